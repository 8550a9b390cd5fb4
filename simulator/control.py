"""The ``/_sim/`` control endpoints: no auth, never rate limited, never faulted.

GET  /_sim/health         {"ok": true}
GET  /_sim/conferences    [{"user_id", "id", "state", "active_members"}, ...]
GET  /_sim/stats          {"rate_limit", "callbacks_dropped", "users": {user_id: counters}}
                          (?arrivals=1 adds each user's last 1000 request arrival times)
POST /_sim/stats/reset    forget the counters
GET  /_sim/faults         current fault settings (and the untidy shapes, faults.SHAPE_NAMES)
POST /_sim/faults         JSON merged into the fault settings
POST /_sim/faults/reset   back to no faults
POST /_sim/users          {"user_id", "token", "secret"} registers a user
GET  /_sim/rate-limit     {"rate": R}
POST /_sim/rate-limit     {"rate": R} changes the limit live (R <= 0 disables it)
GET  /_sim/callbacks      the last 200 callback delivery attempts, oldest first
GET  /_sim/scenario       scenario progress and its conference ids
GET  /_sim/desk           desk scenario progress and its conferences ({"list": [{"id",
                          "account", "kind", "callbacks"}, ...]})
POST /_sim/desk/stop      stop playing the desk scenario (the log is complete from then on)
GET  /_sim/hostile        hostile shapes: {"conferences": {id: shape}, "drip_seconds",
                          "huge_bytes"} (simulator/hostile.py)
POST /_sim/hostile        JSON merged into them ({"conferences": {"conf-1": "drip"}};
                          a null shape puts a conference back to normal)
POST /_sim/hostile/reset  no hostile conferences
"""

from urllib.parse import parse_qs

from simulator.auth import User
from simulator.responses import json_response, parse_json_object


def problem(status, message):
    return json_response(status, {"error": message})


def handle_control(sim, *, method, path, query, raw_body):
    route = (method, path.rstrip("/"))
    try:
        body = parse_json_object(raw_body) if method == "POST" else {}
        return control_route(sim, route, query=query, body=body)
    except ValueError as exc:
        return problem(400, str(exc))


def control_route(sim, route, *, query, body):
    if route == ("GET", "/_sim/health"):
        return json_response(200, {"ok": True})
    if route == ("GET", "/_sim/conferences"):
        return json_response(200, sim.state.summary())
    if route == ("GET", "/_sim/stats"):
        include = parse_qs(query).get("arrivals", ["0"])[0] in ("1", "true")
        return json_response(200, sim.stats(include_arrivals=include))
    if route == ("POST", "/_sim/stats/reset"):
        sim.limiter.reset_stats()
        return json_response(200, sim.stats())
    if route == ("GET", "/_sim/faults"):
        return json_response(200, sim.faults.settings())
    if route == ("POST", "/_sim/faults"):
        sim.faults.update(body)
        return json_response(200, sim.faults.settings())
    if route == ("POST", "/_sim/faults/reset"):
        sim.faults.reset()
        return json_response(200, sim.faults.settings())
    if route == ("POST", "/_sim/users"):
        user = User(
            user_id=str(body.get("user_id") or ""),
            token=str(body.get("token") or ""),
            secret=str(body.get("secret") or ""),
        )
        sim.users.add(user)
        return json_response(201, {"user_id": user.user_id, "token": user.token})
    if route == ("GET", "/_sim/rate-limit"):
        return json_response(200, {"rate": sim.limiter.rate})
    if route == ("POST", "/_sim/rate-limit"):
        if "rate" not in body:
            raise ValueError('expected {"rate": R}')
        sim.set_rate_limit(body["rate"])
        return json_response(200, {"rate": sim.limiter.rate})
    if route == ("GET", "/_sim/callbacks"):
        return json_response(200, sim.callbacks.deliveries())
    if route == ("GET", "/_sim/hostile"):
        return json_response(200, sim.hostile.settings())
    if route == ("POST", "/_sim/hostile"):
        sim.hostile.update(body)
        return json_response(200, sim.hostile.settings())
    if route == ("POST", "/_sim/hostile/reset"):
        sim.hostile.reset()
        return json_response(200, sim.hostile.settings())
    if route == ("GET", "/_sim/scenario"):
        return json_response(200, sim.scenario_progress())
    if route == ("GET", "/_sim/desk"):
        return json_response(200, sim.desk_progress())
    if route == ("POST", "/_sim/desk/stop"):
        if sim.desk is not None:
            sim.desk.stop()
        return json_response(200, sim.desk_progress())
    return problem(404, f"unknown control endpoint {route[0]} {route[1]}")
