"""Command line: ``python -m simulator [options]`` serves until Ctrl-C or SIGTERM."""

import argparse
import signal
import sys

from simulator.auth import DEFAULT_USER_SPEC, parse_user_spec
from simulator.faults import DEFAULT_HANG_SECONDS, SHAPE_NAMES
from simulator.hostile import DEFAULT_DRIP_SECONDS, DEFAULT_HUGE_BYTES, SHAPES
from simulator.server import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_RATE_LIMIT, Simulator
from simulator.timestamps import TIME_FORMATS


def user_spec(text):
    try:
        return parse_user_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def hostile_spec(text):
    conference_id, _, shape = text.rpartition("=")
    if not conference_id or shape not in SHAPES:
        raise argparse.ArgumentTypeError(
            f"expected CONFERENCE_ID=SHAPE with SHAPE one of {', '.join(SHAPES)}, got {text!r}"
        )
    return conference_id, shape


def callback_spec(text):
    user_id, _, url = text.partition("=")
    if not user_id or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected USER_ID=URL, got {text!r}")
    return user_id, url


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description=(
            "Simulate the Bandwidth Catapult v1 conference API "
            "(/v1/users/{userId}/conferences...) with control endpoints under /_sim/."
        ),
    )
    server = parser.add_argument_group("server")
    server.add_argument("--host", default=DEFAULT_HOST, help="address to bind (%(default)s)")
    server.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port, 0 = any free (%(default)s)"
    )
    server.add_argument(
        "--user",
        dest="users",
        action="append",
        type=user_spec,
        metavar="USER_ID:TOKEN:SECRET",
        help=f"register a user; repeatable (default: {DEFAULT_USER_SPEC})",
    )
    server.add_argument(
        "--rate-limit",
        type=float,
        default=DEFAULT_RATE_LIMIT,
        metavar="R",
        help="requests/second per user on /conferences, burst max(1, R); 0 disables (%(default)s)",
    )
    server.add_argument(
        "--time-format",
        choices=TIME_FORMATS,
        default="z",
        help="timestamp shape in responses; 'mixed' rotates shapes per field; 'untidy' also "
        "uses epoch-ms integers and the docs' mixed member offsets (%(default)s)",
    )
    server.add_argument(
        "--seed", type=int, default=0, help="seed for ids, faults, scenario (%(default)s)"
    )
    server.add_argument("--log-requests", action="store_true", help="log each request")
    server.add_argument(
        "--omit-rate",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="share of responses leaving out the fields that hold their documented default, "
        "as the docs' examples do (%(default)s)",
    )
    server.add_argument(
        "--untidy",
        action="store_true",
        help="as untidy as the real API: --omit-rate 1, --time-format untidy, members paged "
        "(--members-page-size or 3) and every shape below on",
    )
    server.add_argument(
        "--members-page-size",
        type=int,
        default=0,
        metavar="N",
        help="members per page of a members list, Link rel=next; 0 = no paging (%(default)s)",
    )

    scenario = parser.add_argument_group("scenario")
    scenario.add_argument(
        "--scenario",
        type=int,
        default=0,
        metavar="N",
        help="create N conferences for the first user and drive their lifecycles",
    )
    scenario.add_argument(
        "--speed", type=float, default=1.0, metavar="F", help="scenario pace factor (10 = 10x)"
    )
    scenario.add_argument(
        "--callback-url", metavar="URL", help="callbackUrl given to scenario conferences"
    )

    desk = parser.add_argument_group(
        "desk scenario (simulator/desk.py: waves of conferences over every --user)"
    )
    desk.add_argument(
        "--desk", type=int, default=0, metavar="N", help="play a desk hour with N conferences"
    )
    desk.add_argument(
        "--desk-minutes",
        type=float,
        default=60.0,
        metavar="M",
        help="real minutes the desk plays; it covers M x --speed scenario minutes (%(default)s)",
    )
    desk.add_argument(
        "--desk-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long after creating the conferences before the first change (%(default)s)",
    )
    desk.add_argument(
        "--desk-log", metavar="PATH", help="append every change made, one JSON line each"
    )
    desk.add_argument(
        "--desk-callback",
        action="append",
        type=callback_spec,
        metavar="USER_ID=URL",
        help="this user's desk conferences call back to URL; repeatable (others: polled only)",
    )

    faults = parser.add_argument_group("faults (on /v1/ requests; change live via /_sim/faults)")
    faults.add_argument(
        "--latency-ms", metavar="MS", type=float, default=0.0, help="added to every response"
    )
    faults.add_argument(
        "--error-rate",
        metavar="FRACTION",
        type=float,
        default=0.0,
        help="fraction answered 500/503 (0..1)",
    )
    faults.add_argument(
        "--bad-gateway-rate",
        metavar="FRACTION",
        type=float,
        default=0.0,
        help="fraction answered 502 with an HTML page, as a gateway does (0..1)",
    )
    faults.add_argument(
        "--malformed-rate",
        metavar="FRACTION",
        type=float,
        default=0.0,
        help="fraction answered 200 + broken body",
    )
    faults.add_argument(
        "--hang-rate",
        metavar="FRACTION",
        type=float,
        default=0.0,
        help="fraction that hang, then get no response",
    )
    faults.add_argument(
        "--limit-rate",
        metavar="FRACTION",
        type=float,
        default=0.0,
        help="fraction of requests answered 403 with category limit (an account rate limit)",
    )
    faults.add_argument(
        "--conflict-rate",
        metavar="FRACTION",
        type=float,
        default=0.0,
        help="fraction of POSTs answered 409 update conflict",
    )
    faults.add_argument(
        "--call-unavailable-rate",
        metavar="FRACTION",
        type=float,
        default=0.0,
        help="fraction of member requests answered 503 call-unavailable",
    )
    faults.add_argument(
        "--unauthorized-body",
        choices=("json", "empty", "html"),
        default="json",
        help="body of a 401 (%(default)s)",
    )
    faults.add_argument(
        "--hang-seconds",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_HANG_SECONDS,
        help="how long a hang lasts (%(default)s)",
    )
    faults.add_argument(
        "--rate-limited-seconds",
        metavar="SECONDS",
        type=float,
        default=0.0,
        help="answer every request 429 for this long after start",
    )
    faults.add_argument(
        "--fault-conference-id",
        dest="fault_conference_ids",
        action="append",
        metavar="CONFERENCE_ID",
        help="only fault requests about this conference; repeatable",
    )

    shapes = parser.add_argument_group(
        "untidy shapes (all on with --untidy; change live via /_sim/faults)"
    )
    shapes.add_argument(
        "--full-429-details",
        action="store_true",
        help="a 429's details also name remoteAddress and requestMethod",
    )
    shapes.add_argument(
        "--legacy-400",
        action="store_true",
        help="400s in the legacy shape: BAD_REQUEST, integer time, user, detail ids",
    )
    shapes.add_argument("--empty-403-details", action="store_true", help='403s with "details": []')
    shapes.add_argument(
        "--relative-links",
        action="store_true",
        help="members pages' Link targets are relative (members?page=1&size=N)",
    )
    shapes.add_argument(
        "--first-links", action="store_true", help='members pages\' Link also names rel="first"'
    )

    hostile = parser.add_argument_group(
        "hostile answers (GETs of chosen conferences; change live via /_sim/hostile)"
    )
    hostile.add_argument(
        "--hostile",
        action="append",
        type=hostile_spec,
        metavar="CONFERENCE_ID=SHAPE",
        help=f"answer this conference ('*': all) in SHAPE ({', '.join(SHAPES)}); repeatable",
    )
    hostile.add_argument(
        "--drip-seconds",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_DRIP_SECONDS,
        help="seconds between the bytes of a 'drip' answer (%(default)s)",
    )
    hostile.add_argument(
        "--huge-bytes",
        metavar="N",
        type=int,
        default=DEFAULT_HUGE_BYTES,
        help="size of the text in a 'huge-body' answer (%(default)s)",
    )
    return parser


def simulator_from_args(args):
    faults = {
        "latency_ms": args.latency_ms,
        "error_rate": args.error_rate,
        "bad_gateway_rate": args.bad_gateway_rate,
        "malformed_rate": args.malformed_rate,
        "hang_rate": args.hang_rate,
        "conflict_rate": args.conflict_rate,
        "limit_rate": args.limit_rate,
        "call_unavailable_rate": args.call_unavailable_rate,
        "unauthorized_body": args.unauthorized_body,
        "hang_seconds": args.hang_seconds,
        "rate_limited_seconds": args.rate_limited_seconds,
    }
    for name in SHAPE_NAMES:
        if getattr(args, name) or args.untidy:
            faults[name] = True
    if args.fault_conference_ids:
        faults["conference_ids"] = args.fault_conference_ids
    desk = None
    if args.desk:
        desk = {
            "conferences": args.desk,
            "minutes": args.desk_minutes,
            "log_path": args.desk_log,
            "delay": args.desk_delay,
            "callback_urls": dict(args.desk_callback or ()),
        }
    return Simulator(
        host=args.host,
        port=args.port,
        users=args.users,
        rate_limit=args.rate_limit,
        seed=args.seed,
        scenario=args.scenario,
        speed=args.speed,
        callback_url=args.callback_url,
        desk=desk,
        time_format=args.time_format,
        faults=faults,
        log_requests=args.log_requests,
        omit_rate=args.omit_rate,
        members_page_size=args.members_page_size,
        hostile=dict(args.hostile or ()),
        drip_seconds=args.drip_seconds,
        huge_bytes=args.huge_bytes,
        untidy=args.untidy,
    )


def startup_line(sim):
    users = ", ".join(f"{user.user_id} (token {user.token})" for user in sim.users.all())
    rate = sim.limiter.rate
    limit = f"{rate:g} req/s per user" if rate > 0 else "off"
    line = f"Catapult simulator on {sim.url} | users: {users} | rate limit: {limit}"
    if sim.scenario is not None:
        line += (
            f" | scenario: {len(sim.scenario.conference_ids)} conferences"
            f" (seed {sim.seed}, speed {sim.scenario.speed:g})"
        )
    if sim.desk is not None:
        line += (
            f" | desk: {len(sim.desk.conference_ids)} conferences over "
            f"{len(sim.desk.user_ids)} accounts (seed {sim.seed}, speed {sim.desk.speed:g})"
        )
    return line


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sim = simulator_from_args(args)
        sim.start()
    except (ValueError, OSError) as exc:
        parser.exit(1, f"simulator: {exc}\n")
    signal.signal(signal.SIGTERM, lambda signum, frame: sim.stop_event.set())
    print(startup_line(sim), flush=True)
    try:
        sim.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
