"""conferences/text.py writes time for people; static/js/confwatch.js follows the same
rules: one table of cases is fed to both (the JS runs in node)."""

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conferences import text

JS = Path(__file__).resolve().parent.parent / "static" / "js" / "confwatch.js"
NOW = datetime(2026, 11, 28, 18, 23, 31, 250000, tzinfo=UTC)
RELATIVE_SECONDS = [0, 4, 5, 42, 59, 60, 119, 3599, 3600, 7199, 86400, 172799, 172800, 10**6]


def test_durations_round_to_two_units_and_configured_ones_stay_exact():
    assert text.duration_text(timedelta(minutes=1, seconds=23)) == "1 min 23 s"
    assert text.duration_text(3 * 3600 + 20 * 60 + 59) == "3 h 20 min"
    assert text.duration_text(-5) == "0 s"
    assert text.exact_duration_text(5400) == "90 min"
    assert text.exact_duration_text(90) == "1 min 30 s"
    assert text.exact_duration_text(86400) == "1 d"


def test_absolute_times_name_their_zone_and_keep_milliseconds_on_hover():
    tokyo = ZoneInfo("Asia/Tokyo")
    assert text.local_text(NOW, zone=tokyo) == "2026-11-29 03:23:31 JST"
    assert text.local_text(NOW, zone=tokyo, named=True) == "2026-11-29 03:23:31 JST (Asia/Tokyo)"
    assert text.exact_text(NOW, zone=tokyo) == "2026-11-29 03:23:31.250 JST"
    earlier = NOW - timedelta(seconds=10)
    assert text.between_text(earlier, NOW, zone=UTC) == "between 18:23:21 and 18:23:31 UTC"


def test_iso_and_parse_time_read_each_other_and_refuse_what_is_not_a_zoned_time():
    assert text.parse_time(text.iso(NOW)) == NOW
    assert text.parse_time("2026-11-28T18:23:31") is None
    assert text.parse_time("yesterday") is None and text.parse_time(None) is None


def test_iso_writes_a_time_as_exact_as_it_is_and_no_more():
    second = datetime(2013, 7, 12, 18, 26, 55, tzinfo=UTC)

    assert text.iso(second) == "2013-07-12T18:26:55+00:00"
    assert text.iso(second.replace(microsecond=685_000)) == "2013-07-12T18:26:55.685+00:00"
    exact = second.replace(microsecond=685_123)
    assert text.iso(exact) == "2013-07-12T18:26:55.685123+00:00"
    assert text.parse_time(text.iso(exact)) == exact and text.iso(None) is None


# The clock's cases: (UTC time, zone); the JavaScript must name each zone as text.py does.
SUMMER = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
CLOCK_CASES = [
    (moment, zone)
    for moment in (NOW, SUMMER)
    for zone in (
        "UTC",
        "America/New_York",
        "Europe/Berlin",
        "Europe/London",
        "Asia/Tokyo",
        "Asia/Kolkata",
        "Australia/Adelaide",
        "America/St_Johns",
        "America/Sao_Paulo",
    )
]


def run_javascript(expression, **values):
    """What `expression` (JavaScript, over confwatch.js's window.confwatchText and the
    given JSON values) evaluates to, run in node."""
    script = (
        "global.window = {}; global.document = {addEventListener() {}};"
        "global.setInterval = () => 0;"
        f"eval(require('fs').readFileSync({json.dumps(str(JS))}, 'utf8'));"
        "const text = window.confwatchText;"
        + "".join(f"const {name} = {json.dumps(value)};" for name, value in values.items())
        + f"console.log(JSON.stringify({expression}));"
    )
    answer = subprocess.run(["node", "-e", script], capture_output=True, check=True, text=True)
    return json.loads(answer.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_says_what_text_py_says_for_the_same_cases():
    cases = [(seconds, suffix) for seconds in RELATIVE_SECONDS for suffix in (" ago", "")]

    answer = run_javascript("cases.map(([s, x]) => text.relativeText(s, x))", cases=cases)

    assert answer == [
        text.relative_text(NOW - timedelta(seconds=seconds), NOW, suffix=suffix)
        for seconds, suffix in cases
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_clock_names_the_zone_as_text_py_does():
    cases = [
        [moment.isoformat(), zone, text.zone_abbreviations(moment, zone=ZoneInfo(zone))]
        for moment, zone in CLOCK_CASES
    ]

    answer = run_javascript(
        "cases.map(([at, zone, names]) => text.clockText(new Date(at), zone, names))",
        cases=cases,
    )

    expected = [text.local_text(m, zone=ZoneInfo(z), date=False) for m, z in CLOCK_CASES]
    assert answer == expected
    assert "14:00:00 CEST" in answer and "19:23:31 CET" in answer and "03:23:31 JST" in answer


def test_a_zones_abbreviations_cover_both_sides_of_daylight_saving_time():
    assert text.zone_abbreviations(NOW, zone=ZoneInfo("Europe/Berlin")) == {60: "CET", 120: "CEST"}
    assert text.zone_abbreviations(NOW, zone=ZoneInfo("Asia/Tokyo")) == {540: "JST"}
    assert text.zone_abbreviations(SUMMER, zone=UTC) == {0: "UTC"}
