"""One conference's history as a file: CSV or JSON, with the fields of the history API
(`reports.conference_data` and `reports.history_item`), newest first like the API, over
a range of the chart (charts.RANGES: the runs that started in it, and the one in effect
when it starts). Streamed in chunks, so a long history never sits in memory."""

import csv
import json
import re

from django.db.models import Q
from django.http import StreamingHttpResponse
from django.utils import timezone

from conferences.web.selectors import charts, reports

FORMATS = ("csv", "json")
# Rows read from Postgres (a server-side cursor) and written out at a time.
CHUNK = 2000


def history_runs(conference, *, range_key, now=None):
    """The runs of the range, newest first, read in chunks."""
    _, length = charts.RANGES[range_key]
    runs = conference.history.order_by("-first_seen_at", "-id").only(
        "conference_id", *reports.HISTORY_FIELDS
    )
    if length is not None:
        start = (now or timezone.now()) - length
        in_effect = (
            conference.history.filter(first_seen_at__lt=start)
            .order_by("-first_seen_at")
            .values_list("pk", flat=True)
            .first()
        )
        runs = runs.filter(Q(first_seen_at__gte=start) | Q(pk=in_effect))
    return runs.iterator(chunk_size=CHUNK)


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection);
# such a cell is written with a leading ' so that it is shown as text (OWASP's advice).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_value(value):
    """One CSV cell, for every CSV confwatch writes (history exports, the admin's
    export): "" for None, true/false, and text that could run as a formula with a
    leading '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(cell):
    """A cell as csv_value wrote it, read back: the leading ' it added is dropped (the
    admin's export imports as it is)."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


class Line:
    """A file-like object whose write returns what was written (for csv.writer)."""

    def write(self, text):
        return text


def csv_chunks(conference, runs):
    writer = csv.writer(Line())
    yield writer.writerow(reports.HISTORY_FIELDS)
    lines = []
    for run in runs:
        item = reports.history_item(run, conference=conference)
        lines.append(writer.writerow([csv_value(item[name]) for name in reports.HISTORY_FIELDS]))
        if len(lines) == CHUNK:
            yield "".join(lines)
            lines = []
    yield "".join(lines)


def json_chunks(conference, runs):
    """The history API's document, {...conference fields, "history": [...]}, in pieces."""
    head = json.dumps(reports.conference_data(conference))
    yield head[:-1] + (', "history": [' if head != "{}" else '"history": [')
    items, first = [], True
    for run in runs:
        items.append(json.dumps(reports.history_item(run, conference=conference)))
        if len(items) == CHUNK:
            yield ("" if first else ", ") + ", ".join(items)
            items, first = [], False
    if items:
        yield ("" if first else ", ") + ", ".join(items)
    yield "]}"


def history_response(conference, *, fmt, range_key):
    runs = history_runs(conference, range_key=range_key)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", conference.conference_id)
    if fmt == "csv":
        response = StreamingHttpResponse(
            csv_chunks(conference, runs), content_type="text/csv; charset=utf-8"
        )
    else:
        response = StreamingHttpResponse(
            json_chunks(conference, runs), content_type="application/json"
        )
    response["Content-Disposition"] = f'attachment; filename="{name}-history-{range_key}.{fmt}"'
    return response
