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


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_says_what_text_py_says_for_the_same_cases():
    cases = [(seconds, suffix) for seconds in RELATIVE_SECONDS for suffix in (" ago", "")]
    script = (
        "global.window = {}; global.document = {addEventListener() {}};"
        "global.setInterval = () => 0;"
        f"eval(require('fs').readFileSync({json.dumps(str(JS))}, 'utf8'));"
        f"const cases = {json.dumps(cases)};"
        "const clock = window.confwatchText.clockText("
        f"new Date({json.dumps(NOW.isoformat())}), 'America/New_York');"
        "console.log(JSON.stringify({relative: cases.map(([s, x]) =>"
        " window.confwatchText.relativeText(s, x)), clock}));"
    )
    answer = json.loads(
        subprocess.run(["node", "-e", script], capture_output=True, check=True, text=True).stdout
    )
    expected = [
        text.relative_text(NOW - timedelta(seconds=seconds), NOW, suffix=suffix)
        for seconds, suffix in cases
    ]
    assert answer["relative"] == expected
    new_york = ZoneInfo("America/New_York")
    assert answer["clock"] == text.local_text(NOW, zone=new_york, date=False)
