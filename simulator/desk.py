"""The desk scenario: a support desk's busy hour, with a log of every change it makes.

``build_desk_plan`` is a pure function of (seed, conferences, accounts, minutes, speed):
N conferences spread round-robin over M accounts, each of one kind and with a
time-ordered list of steps on the *scenario clock* (seconds from the start of the
scenario, which starts on the hour). ``speed`` compresses that clock: a run of
``minutes`` real minutes covers ``minutes * speed`` scenario minutes, so a short run at a
high speed still has several waves.

- Waves: every conference that starts does so in a wave, on the hour or the half hour of
  the scenario clock (0, 1800, 3600 ... s), up to 3 scenario minutes after it.
- ``normal``: 2-8 members join, members are muted, held, leave and rejoin; the
  conference may be held or muted as a whole; after 5-40 scenario minutes everybody
  leaves (it completes) or, one time in five, it is terminated.
- ``alone``: as normal, but everybody except one member leaves; that member stays
  alone until the conference is terminated at its end.
- ``never``: created, and no member ever joins.

``DeskRunner`` creates the conferences (all at once, in state ``created``; a conference
of a callback account carries that account's callbackUrl), then plays the steps through
the same ``State`` operations a client causes and appends one JSON line per field it
changed to the change log:

    {"conference": id, "account": user id, "field": "state" | "active_members" | "hold"
     | "mute" | "member_mute" | "member_hold", "old": ..., "new": ..., "at": ISO time,
     "member": id (member fields only)}

``at`` is the simulator's clock (UTC, microseconds) just after the change was made.
"""

import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC

from simulator.errors import ApiError
from simulator.scenario import ConferencePlanBuilder, apply_step

WAVE_SECONDS = 1800
WAVE_JITTER_SECONDS = 180
SHORTEST_SECONDS = 5 * 60
LONGEST_SECONDS = 40 * 60
NEVER_SHARE = 0.1
ALONE_SHARE = 0.15
TERMINATE_SHARE = 0.2
CONFERENCE_FIELDS = ("state", "active_members", "hold", "mute")


@dataclass(frozen=True)
class DeskPlan:
    kinds: tuple
    accounts: tuple  # index of the account of each conference
    starts: tuple  # scenario seconds the first member joins (None: never)
    steps: tuple
    scenario_seconds: float

    def wave_times(self):
        return tuple(range(0, int(self.scenario_seconds) + 1, WAVE_SECONDS))


def build_desk_plan(*, seed, conferences, accounts, minutes, speed=1.0):
    if conferences < 1 or accounts < 1:
        raise ValueError("the desk scenario needs at least one conference and one account")
    if minutes <= 0 or speed <= 0:
        raise ValueError("minutes and speed must be positive")
    scenario_seconds = minutes * 60 * speed
    waves = list(range(0, int(scenario_seconds) + 1, WAVE_SECONDS))
    kind_rng = random.Random(f"{seed}:desk:kinds")
    kinds, starts, steps = [], [], []
    for index in range(conferences):
        draw = kind_rng.random()
        kind = (
            "never"
            if draw < NEVER_SHARE
            else "alone"
            if draw < NEVER_SHARE + ALONE_SHARE
            else "normal"
        )
        kinds.append(kind)
        rng = random.Random(f"{seed}:desk:{index}")
        if kind == "never":
            starts.append(None)
            continue
        start = waves[index % len(waves)] + rng.uniform(0, WAVE_JITTER_SECONDS)
        starts.append(round(start, 3))
        builder = DeskConferenceBuilder(rng, index)
        builder.lifecycle(
            start=start,
            lifetime=rng.uniform(SHORTEST_SECONDS, LONGEST_SECONDS),
            alone=kind == "alone",
        )
        steps.extend(builder.steps)
    steps.sort(key=lambda step: (step.at, step.conference))
    return DeskPlan(
        kinds=tuple(kinds),
        accounts=tuple(index % accounts for index in range(conferences)),
        starts=tuple(starts),
        steps=tuple(steps),
        scenario_seconds=scenario_seconds,
    )


class DeskConferenceBuilder(ConferencePlanBuilder):
    """Steps for one desk conference: the scenario's builder, its steps further apart and
    its conference-wide hold and mute rarer, ending as a desk's conferences do."""

    STEP_WEIGHTS = (("mute", 2.0), ("hold", 1.0), ("conference-mute", 0.3))
    STEP_WEIGHTS += (("conference-hold", 0.2),)

    def lifecycle(self, *, start, lifetime, alone):
        at = start
        end = start + lifetime
        target = self.rng.randint(2, 8)
        self.join(at)
        while True:
            at += self.rng.uniform(20, 120)
            if at >= end:
                break
            self.random_step(at, target)
        if alone:
            while len(self.active) > 1:
                self.leave(at, self.active[-1])
                at += self.rng.uniform(5, 30)
            self.add(max(at, end) + self.rng.uniform(60, 300), "terminate")
            return
        if self.rng.random() < TERMINATE_SHARE:
            self.add(at, "terminate")
            return
        for slot in list(self.active):
            self.leave(at, slot)
            at += self.rng.uniform(5, 30)


class DeskRunner:
    """Plays a desk plan on ``state`` for ``user_ids`` (account index -> simulator user)."""

    def __init__(
        self,
        *,
        state,
        user_ids,
        plan,
        speed=1.0,
        callback_urls=None,
        log_path=None,
        delay=0.0,
        stop_event=None,
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        if len(user_ids) <= max(plan.accounts):
            raise ValueError(
                f"the desk plan needs {max(plan.accounts) + 1} users, {len(user_ids)} given"
            )
        self.state = state
        self.user_ids = list(user_ids)
        self.plan = plan
        self.speed = speed
        self.callback_urls = dict(callback_urls or {})
        self.log_path = log_path
        # Seconds between creating the conferences and the scenario clock's start, so a
        # benchmark can track them before anything changes.
        self.delay = float(delay)
        self.stop_event = stop_event or threading.Event()
        self.desk_stopped = threading.Event()
        self.conference_ids = []
        self.members = {}
        self.applied_steps = 0
        self.skipped_steps = 0
        self.changes = 0
        self.started_at = None
        self._log = None
        self._thread = None

    def create_conferences(self):
        if self.log_path:
            self._log = open(self.log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        for index, kind in enumerate(self.plan.kinds):
            user_id = self.user_ids[self.plan.accounts[index]]
            conference_id = self.state.create_conference(
                user_id=user_id,
                from_number=f"+1919555{index % 10000:04d}",
                callback_url=self.callback_urls.get(user_id),
                tag=f"desk-{kind}-{index + 1}",
            )
            self.conference_ids.append(conference_id)
            self._write(conference_id, user_id, "state", None, "created")
        return list(self.conference_ids)

    def start(self):
        self._thread = threading.Thread(target=self._run, name="sim-desk", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop playing (the simulator keeps serving) and wait for the log's last line."""
        self.desk_stopped.set()
        self.join(5)

    def join(self, timeout=None):
        if self._thread is not None:
            self._thread.join(timeout)
        if self._log is not None and (self._thread is None or not self._thread.is_alive()):
            self._log.close()
            self._log = None

    def progress(self):
        return {
            "conferences": len(self.conference_ids),
            "steps": len(self.plan.steps),
            "applied_steps": self.applied_steps,
            "skipped_steps": self.skipped_steps,
            "changes": self.changes,
            "speed": self.speed,
            "scenario_seconds": self.plan.scenario_seconds,
            "started_at": self.started_at,
        }

    def conferences(self):
        """Each conference's id, account (simulator user), kind and whether it calls back."""
        return [
            {
                "id": conference_id,
                "account": self.user_ids[self.plan.accounts[index]],
                "kind": self.plan.kinds[index],
                "callbacks": self.user_ids[self.plan.accounts[index]] in self.callback_urls,
            }
            for index, conference_id in enumerate(self.conference_ids)
        ]

    def _run(self):
        if self.delay > 0 and self._wait(self.delay):
            return
        started = time.monotonic()
        self.started_at = time.time()
        for step in self.plan.steps:
            delay = started + step.at / self.speed - time.monotonic()
            if delay > 0 and self._wait(delay):
                break
            if self.stop_event.is_set() or self.desk_stopped.is_set():
                break
            try:
                self._apply(step)
                self.applied_steps += 1
            except (ApiError, KeyError):
                # A client changed this conference (e.g. terminated it): skip the step.
                self.skipped_steps += 1
        if self._log is not None:
            self._log.flush()

    def _wait(self, seconds):
        """Sleep; True when stopped meanwhile (checked every 0.2 s)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop_event.wait(min(left, 0.2)) or self.desk_stopped.is_set():
                return True
        return self.desk_stopped.is_set()

    def _apply(self, step):
        conference_id = self.conference_ids[step.conference]
        user_id = self.user_ids[self.plan.accounts[step.conference]]
        where = {"user_id": user_id, "conference_id": conference_id}
        before = self.state.conference_fields(conference_id=conference_id)
        member_id = apply_step(self.state, where, self.members, step)
        if step.action in ("mute", "hold"):
            name = f"member_{step.action}"
            self._write(conference_id, user_id, name, not step.value, step.value, member=member_id)
        after = self.state.conference_fields(conference_id=conference_id)
        for name in CONFERENCE_FIELDS:
            if before[name] == after[name]:
                continue
            if name == "active_members" and step.action == "terminate":
                # Terminating removes the members one at a time, each with a callback
                # telling the count left (state._terminate): each count is a change.
                for left in range(before[name] - 1, after[name] - 1, -1):
                    self._write(conference_id, user_id, name, left + 1, left)
                continue
            self._write(conference_id, user_id, name, before[name], after[name])

    def _write(self, conference_id, user_id, field_name, old, new, member=None):
        self.changes += 1
        if self._log is None:
            return
        line = {
            "conference": conference_id,
            "account": user_id,
            "field": field_name,
            "old": old,
            "new": new,
            "at": self.state.clock().astimezone(UTC).isoformat(),
        }
        if member is not None:
            line["member"] = member
        self._log.write(json.dumps(line) + "\n")
