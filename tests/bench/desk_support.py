"""What bench_desk.py needs beyond common.py: the comparison of the simulator's change log
with confwatch's events, CPU and memory of process trees read from /proc, the mail
sink's messages, and the viewers (HTTP clients with a live overview and a conference page).
"""

import email
import email.policy
import json
import os
import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

STATUS_FIELDS = ("state", "active_members", "hold", "mute")
INITIAL = {"state": "created", "active_members": 0, "hold": False, "mute": False}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_SLACK = 0.005


# --- the change log against the events --------------------------------------------------


def read_change_log(path):
    """The simulator's status changes: {conference id: {field: [(value, at epoch s)]}}, each
    list starting with the value at creation; and {conference id: account}."""
    changes = defaultdict(lambda: {name: [] for name in STATUS_FIELDS})
    accounts = {}
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        accounts[row["conference"]] = row["account"]
        if row["field"] not in STATUS_FIELDS:
            continue
        at = datetime.fromisoformat(row["at"]).timestamp()
        values = changes[row["conference"]]
        if row["field"] == "state" and row["old"] is None:
            for name in STATUS_FIELDS:
                values[name].append((INITIAL[name], at))
            continue
        values[row["field"]].append((row["new"], at))
    return changes, accounts


@dataclass
class Comparison:
    changes: int = 0
    missing: int = 0
    # Skipped polled changes that lasted less than `shortest`: no poll could see them.
    too_short: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    # (simulator change time, event written time, carried by a callback) of every change
    # confwatch stored.
    matched: list = field(default_factory=list)
    # event id -> simulator change time, for the emails' latencies.
    change_at_by_event: dict = field(default_factory=dict)
    # (what, simulated, stored) of the first few duplicated or out-of-order values, for
    # finding out why.
    examples: list = field(default_factory=list)

    def example(self, what, simulated, stored, index):
        if len(self.examples) < 5:
            self.examples.append((what, simulated, stored[: index + 1]))


def compare(simulated, stored, comparison=None, *, carried=None, shortest=0.0, until=None):
    """Walk one conference's stored values of one field through the simulated ones.

    simulated: [(value, at)], the first the value at creation. stored: [(value, event id,
    observed at, written at)] in the order confwatch wrote them, the first its first
    observation; observed at is the event's occurred_at (a callback's own time, or the
    poll's), written at its created_at (epoch seconds). A stored value matches the latest
    simulated change to that value made before it was observed (CLOCK_SLACK allowed: a
    callback's time has milliseconds only; the earliest later one if none was), searching
    only after the last match. A stored value equal to the one before it is a duplicate;
    one not found after the last match is out of order. A stored None (a callback's
    partial first observation leaves the fields it did not carry unknown) claims nothing
    and is passed over.

    The simulated changes skipped on the way, and those after the last match, are missing,
    except a polled one (`carried(value)` false: no callback tells it) that lasted less
    than `shortest` seconds (the last one lasts until `until`) or that went back to the
    value last matched: no poll can see it, and it counts as too short. Without `carried`
    every change counts. Returns the Comparison (updated in place when given)."""
    result = comparison or Comparison()
    carried = carried or (lambda value: True)
    until = float("inf") if until is None else until
    stored = [entry for entry in stored if entry[0] is not None]
    result.changes += len(simulated) - 1

    def skip(first, last, seen):
        for k in range(first, last):
            value, at = simulated[k]
            lasted = (simulated[k + 1][1] if k + 1 < len(simulated) else until) - at
            if carried(value) or (lasted >= shortest and value != seen):
                result.missing += 1
                seen = value  # a poll should have seen it: the next is a change from it
            else:
                result.too_short += 1

    position = 0
    previous = None
    for index, (value, event_id, observed_at, written_at) in enumerate(stored):
        if index > 0 and value == previous:
            result.duplicated += 1
            result.example("duplicated", simulated, stored, index)
            continue
        previous = value
        start = position + 1 if index > 0 else 0
        candidates = [k for k in range(start, len(simulated)) if simulated[k][0] == value]
        if not candidates:
            result.out_of_order += 1
            result.example("out of order", simulated, stored, index)
            continue
        before = [k for k in candidates if simulated[k][1] <= observed_at + CLOCK_SLACK]
        found = before[-1] if before else candidates[0]
        if found > position:
            skip(position + 1, found, simulated[position][0])
            change_at = simulated[found][1]
            result.matched.append((change_at, written_at, carried(value)))
            result.change_at_by_event[event_id] = change_at
        position = found
    skip(position + 1, len(simulated), simulated[position][0])
    return result


def screen_latencies(simulated, shown):
    """Seconds from each change of active members to one viewer's overview showing it:
    the latest simulated change to the value shown, made before it was shown, timed at
    the first refresh that showed it. Later refreshes showing the same value again are
    not new sightings (timing each would count how long the value lasted)."""
    latencies, timed = [], set()
    for conference_id, value, at in sorted(shown, key=lambda sighting: sighting[2]):
        changes = simulated.get(conference_id, {}).get("active_members", [])
        made = [changed for new, changed in changes[1:] if new == value and changed <= at]
        if made and (conference_id, made[-1]) not in timed:
            timed.add((conference_id, made[-1]))
            latencies.append(at - made[-1])
    return latencies


# --- processes ------------------------------------------------------------------------


def descendants(pid):
    """pid and every process under it (scanning /proc)."""
    parents = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, ()))
    return found


def cpu_seconds(pid, *, children=True):
    """CPU (user + system) of a process, with its waited-for children's, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def tree_cpu_seconds(pid):
    return sum(cpu_seconds(each) for each in descendants(pid))


def tree_rss_bytes(pid):
    total = 0
    for each in descendants(pid):
        try:
            total += int(Path(f"/proc/{each}/statm").read_text().split()[1]) * PAGE_BYTES
        except OSError:
            pass
    return total


class BackendCpu:
    """CPU of the Postgres backends serving one database, sampled: backends come and go,
    so each one's latest reading is kept (a backend's CPU after its last sample is lost)."""

    def __init__(self):
        self.latest = {}
        self.first = {}

    def sample(self, cursor):
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        for (pid,) in cursor.fetchall():
            seconds = cpu_seconds(pid, children=False)
            self.first.setdefault(pid, seconds)
            self.latest[pid] = seconds

    def seconds(self):
        return sum(self.latest[pid] - self.first[pid] for pid in self.latest)


# --- the mail sink --------------------------------------------------------------------


def read_mail(directory):
    """{Message-ID: [arrival epoch s, ...]} of the messages the sink wrote."""
    arrivals = defaultdict(list)
    for path in Path(directory).glob("*.eml"):
        with open(path, "rb") as handle:
            message = email.message_from_binary_file(handle, policy=email.policy.default)
        arrivals[str(message["Message-ID"])].append(path.stat().st_mtime)
    return arrivals


# --- viewers --------------------------------------------------------------------------

VERSION = re.compile(r'hx-get="[^"]*[?&;]v=([^"&]+)')
ROW_MEMBERS = re.compile(
    r'<tr data-conference-id="([^"]+)".*?<td class="members num"[^>]*>([^<]*)</td>', re.S
)
TIMEOUT = (3.05, 15.0)


class Viewer(threading.Thread):
    """A member of staff: logs in, opens the overview and refreshes it as htmx does
    (every `refresh` s with the version it last saw: 204 when nothing changed), and opens
    a conference page every `page_every` s. Records each request's time and status."""

    def __init__(self, *, web_url, username, password, conference_pks, refresh, page_every, stop):
        super().__init__(daemon=True)
        self.web_url = web_url
        self.username = username
        self.password = password
        self.conference_pks = conference_pks
        self.refresh = refresh
        self.page_every = page_every
        self.stop_event = stop
        self.timings = defaultdict(list)  # page -> [seconds]
        # (conference id, active members, epoch s) each time a row's members count changed
        # from what this viewer's overview showed before (rows on its first page only).
        self.shown = []
        self.last_shown = {}
        self.statuses = Counter()
        self.errors = Counter()

    def run(self):
        import requests

        session = requests.Session()
        try:
            self.log_in(session)
            version = self.overview(session, None)
            next_page = time.monotonic()
            turn = 0
            while not self.stop_event.wait(self.refresh):
                version = self.overview(session, version) or version
                if time.monotonic() >= next_page and self.conference_pks:
                    pk = self.conference_pks[turn % len(self.conference_pks)]
                    turn += 1
                    self.get(session, "conference", f"/conferences/{pk}/")
                    next_page = time.monotonic() + self.page_every
        except Exception as error:  # noqa: BLE001 - counted and reported, never hidden
            self.errors[type(error).__name__] += 1
        finally:
            session.close()

    def log_in(self, session):
        login = session.get(self.web_url + "/accounts/login/", timeout=TIMEOUT)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        answer = session.post(
            self.web_url + "/accounts/login/",
            data={"username": self.username, "password": self.password},
            headers={"X-CSRFToken": token, "Referer": self.web_url + "/accounts/login/"},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        if answer.status_code != 302:
            raise RuntimeError(f"login answered {answer.status_code}")

    def overview(self, session, version):
        if version is None:
            answer = self.get(session, "overview", "/")
        else:
            headers = {"HX-Request": "true"}
            answer = self.get(session, "overview refresh", f"/?v={version}", headers=headers)
        if answer is not None and answer.status_code == 200:
            self.note_rows(answer.text, time.time())
            found = VERSION.search(answer.text)
            return found.group(1) if found else None
        return None

    def note_rows(self, html, at):
        for conference_id, text in ROW_MEMBERS.findall(html):
            if not text.strip().isdigit():
                continue
            value = int(text)
            before = self.last_shown.get(conference_id)
            self.last_shown[conference_id] = value
            if before is not None and before != value:
                self.shown.append((conference_id, value, at))

    def get(self, session, page, path, headers=None):
        import requests

        started = time.monotonic()
        try:
            answer = session.get(self.web_url + path, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as error:
            self.errors[type(error).__name__] += 1
            return None
        self.timings[page].append(time.monotonic() - started)
        self.statuses[answer.status_code] += 1
        return answer
