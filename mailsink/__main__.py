"""Command line: ``python -m mailsink [--port 8025] [--dir var/mail]`` until Ctrl-C or SIGTERM."""

import argparse
import signal
import sys
import threading

from mailsink.server import DEFAULT_HOST, DEFAULT_PORT, MailSink


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mailsink",
        description=(
            "A local SMTP server that accepts every message and delivers none: it prints "
            "one line per message (time, recipients, subject) and, with --dir, writes each "
            "message there as an .eml file named after its arrival time and number."
        ),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (%(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port, 0 = any free (%(default)s)"
    )
    parser.add_argument(
        "--dir",
        dest="directory",
        metavar="DIR",
        help="write each message to DIR as YYYYmmdd-HHMMSS-NNNN.eml (created if missing)",
    )
    parser.add_argument(
        "--every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="print at most one line every SECONDS (how many messages came, and the "
        "latest) instead of one per message",
    )
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    # keep=False: a long demo would otherwise hold every message in memory.
    sink = MailSink(
        args.host, args.port, args.directory, out=sys.stdout, every=args.every, keep=False
    )
    try:
        sink.start()
    except (OSError, TimeoutError) as exc:
        parser.exit(1, f"mailsink: {exc}\n")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    where = f", writing each message to {args.directory}" if args.directory else ""
    print(f"Mail sink on smtp://{sink.host}:{sink.port}{where}", flush=True)
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
