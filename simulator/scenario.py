"""Scenario mode: N conferences driven through seeded, realistic lifecycles.

``build_plan`` is a pure function of (seed, count): which kind each conference is and a
time-ordered list of steps. ``ScenarioRunner`` creates the conferences at start and plays
the steps in a background thread through the same ``State`` operations a client causes.

Kinds of conference:
- ``normal``: first member joins 5-30 s after start; then every 5-60 s someone joins,
  leaves, is (un)muted or put on/off hold; after 3-45 minutes either everybody leaves
  (the conference auto-completes) or it is terminated.
- ``bridge``: long-running; keeps at least one member for the whole plan (3 hours).
- ``idle``: stays ``created``; half of them are terminated after 15-60 minutes.

Times are scenario seconds; ``speed`` divides them (speed 10 plays 10x faster).
"""

import random
import string
import threading
import time
from dataclasses import dataclass

from simulator.errors import ApiError

BRIDGE_HORIZON_SECONDS = 3 * 3600
CALL_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Step:
    at: float
    conference: int
    action: str
    slot: int = -1
    value: bool | None = None
    call_id: str = ""


@dataclass(frozen=True)
class Plan:
    kinds: tuple
    from_numbers: tuple
    steps: tuple


def assign_kinds(seed, count):
    special = count // 8
    if count >= 3:
        special = max(1, special)
    kinds = ["idle"] * special + ["bridge"] * special + ["normal"] * (count - 2 * special)
    random.Random(f"{seed}:scenario:kinds").shuffle(kinds)
    return kinds


def build_plan(*, seed, count):
    kinds = assign_kinds(seed, count)
    from_numbers = []
    steps = []
    for index, kind in enumerate(kinds):
        rng = random.Random(f"{seed}:scenario:{index}")
        from_numbers.append(f"+1919555{rng.randint(0, 9999):04d}")
        builder = ConferencePlanBuilder(rng, index)
        if kind == "idle":
            builder.idle()
        elif kind == "bridge":
            builder.lifecycle(lifetime=BRIDGE_HORIZON_SECONDS, keep_one=True)
        else:
            builder.lifecycle(lifetime=rng.uniform(180, 2700), keep_one=False)
        steps.extend(builder.steps)
    steps.sort(key=lambda step: (step.at, step.conference))
    return Plan(kinds=tuple(kinds), from_numbers=tuple(from_numbers), steps=tuple(steps))


class ConferencePlanBuilder:
    """Steps for one conference, tracking who is in it so every step makes sense."""

    # How often each change is drawn (joins and leaves are added when they make sense).
    STEP_WEIGHTS = (("mute", 2.0), ("hold", 1.0), ("conference-mute", 0.5))
    STEP_WEIGHTS += (("conference-hold", 0.3),)

    def __init__(self, rng, index):
        self.rng = rng
        self.index = index
        self.steps = []
        self.active = []
        self.mute = {}
        self.hold = {}
        self.conference_mute = False
        self.conference_hold = False
        self.next_slot = 0

    def idle(self):
        if self.rng.random() < 0.5:
            self.add(self.rng.uniform(900, 3600), "terminate")

    def lifecycle(self, *, lifetime, keep_one):
        at = self.rng.uniform(5, 30)
        end = at + lifetime
        target = self.rng.randint(2, 8) if keep_one else self.rng.randint(1, 8)
        self.join(at)
        while True:
            at += self.rng.uniform(5, 60)
            if at >= end:
                break
            self.random_step(at, target)
        if keep_one:
            return
        if self.rng.random() < 0.3:
            self.add(at, "terminate")
            return
        for slot in list(self.active):
            self.leave(at, slot)
            at += self.rng.uniform(3, 20)

    def random_step(self, at, target):
        choices = list(self.STEP_WEIGHTS)
        if len(self.active) < target:
            choices.append(("join", 3.0))
        if len(self.active) > 1:
            choices.append(("leave", 1.5))
        names = [name for name, _ in choices]
        weights = [weight for _, weight in choices]
        action = self.rng.choices(names, weights=weights)[0]
        if action == "join":
            self.join(at)
        elif action == "leave":
            self.leave(at, self.rng.choice(self.active))
        elif action in ("mute", "hold"):
            slot = self.rng.choice(self.active)
            flags = self.mute if action == "mute" else self.hold
            flags[slot] = not flags[slot]
            self.add(at, action, slot=slot, value=flags[slot])
        elif action == "conference-mute":
            self.conference_mute = not self.conference_mute
            self.add(at, action, value=self.conference_mute)
        else:
            self.conference_hold = not self.conference_hold
            self.add(at, action, value=self.conference_hold)

    def join(self, at):
        slot = self.next_slot
        self.next_slot += 1
        self.active.append(slot)
        self.mute[slot] = False
        self.hold[slot] = False
        call_id = "c-" + "".join(self.rng.choice(CALL_ID_ALPHABET) for _ in range(25))
        self.add(at, "join", slot=slot, call_id=call_id)

    def leave(self, at, slot):
        self.active.remove(slot)
        self.add(at, "leave", slot=slot)

    def add(self, at, action, **fields):
        self.steps.append(Step(at=round(at, 3), conference=self.index, action=action, **fields))


class ScenarioRunner:
    def __init__(self, *, state, user_id, plan, speed=1.0, callback_url=None, stop_event=None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.state = state
        self.user_id = user_id
        self.plan = plan
        self.speed = speed
        self.callback_url = callback_url
        self.stop_event = stop_event or threading.Event()
        self.conference_ids = []
        self.members = {}
        self.applied_steps = 0
        self.skipped_steps = 0
        self._thread = None

    def create_conferences(self):
        for index, kind in enumerate(self.plan.kinds):
            conference_id = self.state.create_conference(
                user_id=self.user_id,
                from_number=self.plan.from_numbers[index],
                callback_url=self.callback_url,
                tag=f"scenario-{kind}-{index + 1}",
            )
            self.conference_ids.append(conference_id)
        return list(self.conference_ids)

    def start(self):
        self._thread = threading.Thread(target=self._run, name="sim-scenario", daemon=True)
        self._thread.start()

    def join(self, timeout=None):
        if self._thread is not None:
            self._thread.join(timeout)

    def progress(self):
        return {
            "conferences": len(self.conference_ids),
            "steps": len(self.plan.steps),
            "applied_steps": self.applied_steps,
            "skipped_steps": self.skipped_steps,
            "speed": self.speed,
        }

    def _run(self):
        started = time.monotonic()
        for step in self.plan.steps:
            delay = started + step.at / self.speed - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                return
            if self.stop_event.is_set():
                return
            try:
                self._apply(step)
                self.applied_steps += 1
            except (ApiError, KeyError):
                # A client changed this conference (e.g. terminated it): skip the step.
                self.skipped_steps += 1

    def _apply(self, step):
        where = {"user_id": self.user_id, "conference_id": self.conference_ids[step.conference]}
        apply_step(self.state, where, self.members, step)


def apply_step(state, where, members, step):
    """Make one step's change on ``state`` as a client's request would; ``members`` maps
    (conference index, slot) to member ids (a join adds one). Returns the member id a
    member step touched, else None."""
    if step.action == "join":
        member_id = state.add_member(call_id=step.call_id, **where)
        members[(step.conference, step.slot)] = member_id
        return member_id
    if step.action == "leave":
        member_id = members[(step.conference, step.slot)]
        state.update_member(member_id=member_id, changes={"state": "completed"}, **where)
        return member_id
    if step.action in ("mute", "hold"):
        member_id = members[(step.conference, step.slot)]
        state.update_member(member_id=member_id, changes={step.action: step.value}, **where)
        return member_id
    if step.action in ("conference-mute", "conference-hold"):
        name = step.action.removeprefix("conference-")
        state.update_conference(changes={name: step.value}, **where)
    elif step.action == "terminate":
        state.update_conference(changes={"state": "completed"}, **where)
    return None
