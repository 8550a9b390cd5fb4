"""The conference page's chart: active members over time, with the state as coloured
bands and hold and mute periods as strips, drawn on the server as SVG (no JavaScript).

A range of the history costs at most four small queries, whatever the number of rows:
the run in effect when the range starts, whether the range holds more than
MAX_EXACT_RUNS runs, then the runs themselves when it does not or, when it does, the
same runs summed up
in SQL per bucket (`date_bin`, at most MAX_BUCKETS buckets of a round length, on a
fixed grid so that they stay put while the page refreshes) with their lowest, highest
and last member count, last state, whether hold and mute were on, and the time
spent in each state. A run lasts until the next run starts; the newest run until it was
last seen (a completed conference stays completed until the end of the range).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils import timezone
from django.utils.html import escape

from conferences.models import ConferenceState, HistoryEntry
from conferences.text import duration_text, in_zone, local_text

RANGES = {
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(hours=24)),
    "7d": ("last 7 days", timedelta(days=7)),
    "all": ("since first observed", None),
}
# A conference first observed less than this long ago is drawn "since first observed"
# by default (it fills the chart); an older one over the last 24 hours.
DEFAULT_RANGE = "24h"
# Up to this many runs in the range are drawn one by one; more are bucketed in SQL, in
# the shortest of STRIDES that makes at most MAX_BUCKETS buckets.
MAX_EXACT_RUNS = 600
MAX_BUCKETS = 400
GRID_ORIGIN = datetime(2001, 1, 1, tzinfo=UTC)  # a Monday, midnight UTC
STRIDES = [
    timedelta(minutes=minutes)
    for minutes in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
]

RUN_COLUMNS = ("first_seen_at", "last_seen_at", "state", "active_members", "hold", "mute")
STATES = [ConferenceState.CREATED, ConferenceState.ACTIVE, ConferenceState.COMPLETED]


def range_choices():
    """(key, label) of each range, as the pages offer them."""
    return [(key, label) for key, (label, _) in RANGES.items()]


class BadRange(ValueError):
    pass


def parse_range(value, *, conference, now=None):
    """The range key of the `range` query parameter; when absent, the conference's
    default: "since first observed" when that is shorter than DEFAULT_RANGE, else
    DEFAULT_RANGE (one indexed query)."""
    if value in (None, ""):
        now = now or timezone.now()
        first = (
            HistoryEntry.objects.filter(conference=conference)
            .order_by("first_seen_at")
            .values_list("first_seen_at", flat=True)
            .first()
        )
        if first is not None and now - first < RANGES[DEFAULT_RANGE][1]:
            return "all"
        return DEFAULT_RANGE
    if value not in RANGES:
        choices = ", ".join(f"{key} ({label})" for key, (label, _) in RANGES.items())
        raise BadRange(f"The chart has no range {value!r}: it has {choices}.")
    return value


@dataclass
class Span:
    """A stretch of time with one status (exact), or a bucket that sums several runs up:
    `low`/`high` are the fewest and most members in it, `last` those at its end, `hold`
    and `mute` whether they were on at any time in it."""

    start: object
    end: object
    state: str | None
    low: int | None
    high: int | None
    last: int | None
    hold: bool | None
    mute: bool | None


@dataclass
class Chart:
    range_key: str
    range_label: str
    start: object
    end: object
    # When the open run was last seen, exactly (Conference.run_seen_at; its stored
    # last_seen_at may lag by up to history.RUN_REFRESH).
    open_seen: object = None
    spans: list = field(default_factory=list)
    bucketed: bool = False
    bucket: timedelta | None = None
    changes: int = 0
    # Seconds spent in each state, on hold and muted, within the range.
    seconds: dict = field(default_factory=dict)

    @property
    def observed_seconds(self):
        return sum(self.seconds.get(state, 0) for state in (*STATES, None))

    def members(self):
        lows = [span.low for span in self.spans if span.low is not None]
        highs = [span.high for span in self.spans if span.high is not None]
        lasts = [span.last for span in self.spans if span.last is not None]
        if not lows:
            return None, None, None
        return min(lows), max(highs), lasts[-1] if lasts else None

    def summary(self):
        """The chart in words, for everyone and for screen readers."""
        start, end = (local_text(moment, seconds=False) for moment in (self.start, self.end))
        when = f"{self.range_label.capitalize()} ({start} to {end})"
        if not self.spans:
            return f"{when}: not observed."
        low, high, now = self.members()
        parts = []
        plural = "" if self.changes == 1 else "s"
        parts.append(f"{self.changes} change{plural} recorded")
        if low is not None:
            parts.append(f"active members between {low} and {high}, {now} at the end")
        total = (self.end - self.start).total_seconds() or 1
        shares = [
            f"{state} {share(self.seconds.get(state, 0), total)}"
            for state in STATES
            if self.seconds.get(state, 0) > 0
        ]
        if shares:
            parts.append("time " + ", ".join(shares))
        unobserved = total - self.observed_seconds
        if unobserved > total * 0.01:
            parts.append(f"not observed {share(unobserved, total)}")
        for name, words in (("hold", "on hold"), ("mute", "muted")):
            seconds = self.seconds.get(name, 0)
            parts.append(f"{words} {duration_text(seconds)}" if seconds else f"never {words}")
        text = f"{when}: " + "; ".join(parts) + "."
        if self.bucketed:
            text += f" Each point of the chart sums up {duration_text(self.bucket)}."
        return text

    def svg(self, *, title):
        """The chart twice, wide and narrow: the stylesheet shows the one that fits."""
        return draw(self, title=title, layout=WIDE) + draw(self, title=title, layout=NARROW)


def share(seconds, total):
    percent = 100 * seconds / total
    if percent < 1:
        return "under 1%"
    if 99 < percent < 100:
        return "over 99%"
    return f"{percent:.0f}%"


def conference_chart(conference, *, range_key, now=None):
    """The chart of one conference over the range (a key of RANGES)."""
    now = now or timezone.now()
    label, length = RANGES[range_key]
    history = HistoryEntry.objects.filter(conference=conference)
    if length is None:
        first = history.order_by("first_seen_at").values_list("first_seen_at", flat=True)
        start = first.first()
        if start is None:
            return Chart(range_key, label, now - timedelta(hours=1), now)
        end = now
        if conference.is_completed:
            end = max(newest_run(conference)[1], start + timedelta(seconds=1))
        carried = None
    else:
        start, end = now - length, now
        carried = (
            history.filter(first_seen_at__lt=start)
            .order_by("-first_seen_at")
            .values_list(*RUN_COLUMNS)
            .first()
        )
    chart = Chart(range_key, label, start, end, open_seen=conference.run_seen_at)
    in_range = history.filter(first_seen_at__gte=start, first_seen_at__lte=end)
    # More than MAX_EXACT_RUNS? One step along the index answers, reading no rows.
    if not in_range.order_by("first_seen_at").values_list("id")[MAX_EXACT_RUNS:].exists():
        runs = list(in_range.order_by("first_seen_at", "id").values_list(*RUN_COLUMNS))
        chart.changes = len(runs)
        exact_spans(chart, ([carried] if carried else []) + runs)
    else:
        bucketed_spans(chart, conference, carried)
    return chart


def newest_run(conference):
    """The conference's newest run as a RUN_COLUMNS tuple (its row is at hand)."""
    run = conference.latest_history
    if run is None:
        history = HistoryEntry.objects.filter(conference=conference).order_by("-first_seen_at")
        return history.values_list(*RUN_COLUMNS).first()
    return tuple(getattr(run, name) for name in RUN_COLUMNS)


def run_end(run, following, end, open_seen=None):
    """When a run (a RUN_COLUMNS tuple) stops counting: when the next one starts, or when
    it was last seen (the open run: `open_seen` when later); a completed conference stays
    completed."""
    if following is not None:
        return following[0]
    if run[2] == ConferenceState.COMPLETED:
        return end
    return max(run[1], open_seen) if open_seen is not None else run[1]


def exact_spans(chart, runs, *, until=None):
    """One span per run (RUN_COLUMNS tuples, oldest first); the last one ends at `until`
    when given (where the next, bucketed, runs start)."""
    for index, run in enumerate(runs):
        following = runs[index + 1] if index + 1 < len(runs) else None
        start = max(run[0], chart.start)
        end = until if following is None and until is not None else None
        end = min(end or run_end(run, following, chart.end, chart.open_seen), chart.end)
        if end < start:
            continue
        _, _, state, members, hold, mute = run
        chart.spans.append(Span(start, end, state, members, members, members, hold, mute))
        length = (end - start).total_seconds()
        for name, counts in ((state, True), ("hold", hold), ("mute", mute)):
            if counts:
                chart.seconds[name] = chart.seconds.get(name, 0) + length


# One pass over the range's runs in index order, from the index alone (it includes the
# values; the newest run's end, `last_end`, comes from its row): each run's end (the next
# run's start) and whether it is the last of its bucket come from window functions over
# that order, so the aggregates need no sorting of their own.
BUCKETS_SQL = """
WITH runs AS (
    SELECT first_seen_at AS at, state, active_members AS members, hold, mute,
           date_bin(%(stride)s, first_seen_at, %(origin)s) AS bucket,
           LEAST(COALESCE(lead(first_seen_at) OVER w, %(last_end)s), %(end)s) AS until,
           lead(date_bin(%(stride)s, first_seen_at, %(origin)s)) OVER w AS next_bucket
    FROM conferences_historyentry
    WHERE conference_id = %(conference)s
      AND first_seen_at >= %(start)s AND first_seen_at <= %(end)s
    WINDOW w AS (ORDER BY first_seen_at)
), marked AS (
    SELECT *, next_bucket IS DISTINCT FROM bucket AS last FROM runs
)
SELECT bucket,
       count(*),
       min(members),
       max(members),
       max(members) FILTER (WHERE last),
       max(state) FILTER (WHERE last),
       bool_or(hold) FILTER (WHERE last),
       bool_or(hold),
       bool_or(mute) FILTER (WHERE last),
       bool_or(mute),
       max(until),
       min(at),
       extract(epoch FROM sum(until - at) FILTER (WHERE state = 'created')),
       extract(epoch FROM sum(until - at) FILTER (WHERE state = 'active')),
       extract(epoch FROM sum(until - at) FILTER (WHERE state = 'completed')),
       extract(epoch FROM sum(until - at) FILTER (WHERE state IS NULL)),
       extract(epoch FROM sum(until - at) FILTER (WHERE hold)),
       extract(epoch FROM sum(until - at) FILTER (WHERE mute))
FROM marked
GROUP BY bucket
ORDER BY bucket
"""


def bucketed_spans(chart, conference, carried):
    """Spans of buckets summed up in SQL: one span per bucket with runs (lowest,
    highest and last members, hold or mute at any time) and, up to the next bucket with
    runs, one span with the values the bucket ended with."""
    length = chart.end - chart.start
    stride = next((s for s in STRIDES if s * MAX_BUCKETS >= length), length / MAX_BUCKETS)
    newest = newest_run(conference)
    params = {
        "conference": conference.pk,
        "start": chart.start,
        "end": chart.end,
        "stride": stride,
        "origin": GRID_ORIGIN,
        "last_end": run_end(newest, None, chart.end, chart.open_seen),
    }
    with connection.cursor() as cursor:
        cursor.execute(BUCKETS_SQL, params)
        rows = cursor.fetchall()
    chart.bucketed, chart.bucket = True, stride
    if carried:
        exact_spans(chart, [carried], until=rows[0][11])  # until the first run in the range
    for index, row in enumerate(rows):
        bucket, count, low, high, last, state, hold, any_hold, mute, any_mute, until = row[:11]
        chart.changes += count
        for name, value in zip((*STATES, None, "hold", "mute"), row[12:], strict=True):
            if value:
                chart.seconds[name] = chart.seconds.get(name, 0) + float(value)
        start = max(bucket, chart.spans[-1].end if chart.spans else chart.start)
        before = chart.spans[-1].last if chart.spans else None
        if before is not None and low is not None and start < row[11]:
            # The count in effect when the bucket starts counts too.
            low, high = min(low, before), max(high, before)
        bucket_end = min(bucket + stride, until)
        chart.spans.append(Span(start, bucket_end, state, low, high, last, any_hold, any_mute))
        following = rows[index + 1][0] if index + 1 < len(rows) else until
        if following > bucket_end:
            chart.spans.append(Span(bucket_end, following, state, last, last, last, hold, mute))


# Drawing. Coordinates are in the SVG's own units; the image scales to its frame's width.
# Two layouts: wide for screens, narrow (taller, fewer time labels) for phones, where
# 400 units fill about 350 px, so 14-unit labels are at least 11 px.
@dataclass(frozen=True)
class Layout:
    name: str
    width: int
    left: int
    right: int
    plot_top: int
    plot_bottom: int
    hold_y: int
    mute_y: int
    strip_height: int
    axis_y: int
    height: int
    font: int
    ticks: int


WIDE = Layout("wide", 800, 34, 8, 8, 140, 148, 160, 9, 184, 190, 11, 5)
NARROW = Layout("narrow", 400, 36, 10, 8, 200, 210, 226, 12, 258, 264, 14, 3)
STATE_FILL = {"created": "#fbecb5", "active": "#cdebd5", "completed": "#dfe2e6"}
UNKNOWN_FILL = "#eeeeee"
HOLD_FILL, MUTE_FILL, LINE, BAND = "#b35c00", "#6a3d9a", "#1d3557", "#4d6687"


def draw(chart, *, title, layout=WIDE):
    if not chart.spans:
        return ""
    span_seconds = (chart.end - chart.start).total_seconds() or 1
    width, left, right = layout.width, layout.left, layout.right
    plot_top, plot_bottom, font = layout.plot_top, layout.plot_bottom, layout.font
    plot_width = width - left - right

    def x(moment):
        return left + plot_width * (moment - chart.start).total_seconds() / span_seconds

    _, high, _ = chart.members()
    top = max(1, high or 0)

    def y(members):
        return plot_bottom - (plot_bottom - plot_top) * members / top

    summary = chart.summary()
    ids = f"chart-title-{layout.name} chart-desc-{layout.name}"
    parts = [
        f'<svg class="chart chart-{layout.name}" viewBox="0 0 {width} {layout.height}" '
        f'role="img" aria-labelledby="{ids}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title-{layout.name}">{escape(title)}</title>',
        f'<desc id="chart-desc-{layout.name}">{escape(summary)}</desc>',
    ]
    for start, end, state in merged(chart.spans, lambda span: span.state):
        fill = STATE_FILL.get(state, UNKNOWN_FILL)
        parts.append(rect(x(start), plot_top, x(end) - x(start), plot_bottom - plot_top, fill))
    ticks = sorted({0, top, top // 2} if top >= 4 else {0, top})
    for value in ticks:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="#9aa3ad" stroke-width="0.5" stroke-dasharray="3 3"/>'
            f'<text x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end" '
            f'font-size="{font}" fill="#4b5560">{value}</text>'
        )
    if chart.bucketed:
        # Each bucket as a band from its fewest to its most members.
        for span in chart.spans:
            if span.low is not None and span.high is not None:
                height = max(y(span.low) - y(span.high), 2)
                band_width = x(span.end) - x(span.start) + 0.5  # overlap: no seams
                top_y = min(y(span.high), plot_bottom - 1)
                parts.append(rect(x(span.start), top_y, band_width, height, BAND))
    else:
        parts.append(members_path(chart.spans, x, y))
    strip = layout.strip_height
    for name, row_y, fill in (
        ("hold", layout.hold_y, HOLD_FILL),
        ("mute", layout.mute_y, MUTE_FILL),
    ):
        parts.append(
            f'<text x="{left - 4}" y="{row_y + strip - 1}" text-anchor="end" '
            f'font-size="{font}" fill="#4b5560">{name}</text>'
        )
        parts.append(rect(left, row_y, plot_width, strip, "#f3f4f6"))
        for start, end, on in merged(chart.spans, lambda span, name=name: getattr(span, name)):
            if on:
                parts.append(rect(x(start), row_y, x(end) - x(start), strip, fill))
    for moment, text in time_ticks(chart, count=layout.ticks):
        anchor = "middle"
        if moment == chart.start:
            anchor = "start"
        elif moment == chart.end:
            anchor = "end"
        parts.append(
            f'<text x="{x(moment):.1f}" y="{layout.axis_y}" text-anchor="{anchor}" '
            f'font-size="{font}" fill="#4b5560">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def rect(left, top, width, height, fill, *, opacity=None):
    extra = f' fill-opacity="{opacity}"' if opacity is not None else ""
    return (
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{max(width, 1):.1f}" '
        f'height="{height:.1f}" fill="{fill}"{extra}/>'
    )


def merged(spans, value_of):
    """(start, end, value) of the stretches where value_of(span) stays the same."""
    stretches = []
    for span in spans:
        value = value_of(span)
        if stretches and stretches[-1][2] == value and stretches[-1][1] >= span.start:
            stretches[-1][1] = span.end
        else:
            stretches.append([span.start, span.end, value])
    return [tuple(stretch) for stretch in stretches]


def members_path(spans, x, y):
    """A step line of the members of each span; unknown counts and gaps in the
    observations break it."""
    commands, previous = [], None
    for span in spans:
        if span.last is None:
            previous = None
            continue
        level = y(span.last)
        if previous is None or previous.end < span.start:
            commands.append(f"M{x(span.start):.1f} {level:.1f}")
        else:
            commands.append(f"L{x(span.start):.1f} {level:.1f}")
        commands.append(f"L{max(x(span.end), x(span.start) + 1):.1f} {level:.1f}")
        previous = span
    if not commands:
        return ""
    return f'<path d="{"".join(commands)}" fill="none" stroke="{LINE}" stroke-width="1.5"/>'


def time_ticks(chart, *, count=5):
    """`count` labelled times along the axis, in the viewer's time zone, which the first
    label names ("09:00 CET", as text.local_text writes it), and any label after a
    change of daylight saving time ("Sun 03:00 CET" after "Sat 15:00 CEST"). Seconds
    when the labels are less than a minute apart (a conference observed for two minutes),
    so no two read the same."""
    length = chart.end - chart.start
    if length < timedelta(minutes=count - 1):  # labels less than a minute apart
        pattern = "%H:%M:%S"
    elif length <= timedelta(days=1):
        pattern = "%H:%M"
    elif length <= timedelta(days=14):
        pattern = "%a %H:%M"
    else:
        pattern = "%Y-%m-%d"
    ticks, zone = [], None
    for step in range(count):
        moment = chart.start + length * step / (count - 1)
        local = in_zone(moment)
        shown = local.strftime(pattern)
        if local.tzname() != zone:
            zone = local.tzname()
            shown = f"{shown} {zone}"
        ticks.append((moment, shown))
    return ticks
