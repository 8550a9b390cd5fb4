"""Bulk import: a CSV of conference ids, with an optional label and tags, for one account.

All or nothing: every row is checked first; if any row is refused, nothing is written and
the result says which rows and why (with what would have been added), so the file can be
fixed and imported again. Ids the account tracks already are left as they are, so the
same file may be imported twice. The admin's "Import CSV" page and the
`import_conferences` command both call `import_conferences`.

The file: UTF-8 (a byte order mark is fine), comma-separated. Without a header, each row
is `conference_id[,label[,tags]]`. A first row whose cells are column names is a header,
never an id (`id,label,tags` as the README writes it, or `conference_id,...` as the admin
exports it: `id` is another name for `conference_id`); columns are then found by name; the
other columns of the admin's CSV export are ignored, so an export imports as it is. Tags are
separated by commas (in a quoted cell) or semicolons, and stored in lower case as the track
form does.
"""

import csv
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import ngettext

from conferences.models import Conference
from conferences.registry import tracking
from conferences.web.selectors import exports

MAX_ROWS = 5000
MAX_BYTES = 2 * 1024 * 1024
MAX_LABEL = 200
MAX_TAG = 50
COLUMNS = ("conference_id", "label", "tags")
# Other names a header may give a column.
ALIASES = {"id": "conference_id"}
# Columns of the admin's CSV export that an import ignores.
EXPORT_COLUMNS = (
    "account",
    "state",
    "active_members",
    "hold",
    "mute",
    "from_number",
    "created_time",
    "completed_time",
    "last_changed_at",
    "poll_status",
    "poll_error",
    "last_polled_at",
    "paused",
    "duration_seconds",
    "profile",
    "callback_url",
    "callback_http_method",
    "callback_timeout",
    "fallback_url",
)
SHOWN_CHARACTERS = 80


class FileRefused(ValueError):
    """The file as a whole cannot be read (encoding, size, header)."""


@dataclass(frozen=True)
class Row:
    line: int
    conference_id: str
    label: str
    tags: list


@dataclass(frozen=True)
class Refusal:
    line: int
    text: str
    reason: str

    def __str__(self):
        return f"line {self.line}: {self.reason} ({self.text})"


@dataclass
class ImportResult:
    account: object
    new: list = field(default_factory=list)  # ids added, or that would have been
    already_tracked: list = field(default_factory=list)
    refused: list = field(default_factory=list)

    @property
    def imported(self):
        return not self.refused

    @property
    def added(self):
        return self.new if self.imported else []

    def summary(self):
        new = ngettext("%(count)d conference", "%(count)d conferences", len(self.new))
        new %= {"count": len(self.new)}
        tracked = len(self.already_tracked)
        if not self.imported:
            refused = ngettext("%(count)d row", "%(count)d rows", len(self.refused))
            are_tracked = ngettext("%(count)d is", "%(count)d are", tracked)
            return (
                f"Nothing was imported: {refused % {'count': len(self.refused)}} refused "
                f"(below). Fix them and import again; then {new} would be added and "
                f"{are_tracked % {'count': tracked}} already tracked on {self.account}."
            )
        return f"Added {new} to {self.account}; {tracked} already tracked (unchanged)."


def read_rows(data):
    """(line number, cells) of every non-blank row of the file, and the column names.
    Raises FileRefused when the file cannot be read as a whole."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise FileRefused(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise FileRefused(f"The file is not UTF-8 text (byte {error.start}).") from None
    elif len(data) > MAX_BYTES:
        raise FileRefused(f"The text is longer than {MAX_BYTES // (1024 * 1024)} MB.")
    data = data.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(data, newline=""), strict=True)
    rows = []
    try:
        for cells in reader:
            cells = [exports.csv_text(cell).strip() for cell in cells]
            if any(cells):
                rows.append((reader.line_num, cells))
    except csv.Error as error:
        raise FileRefused(f"Line {reader.line_num} is not CSV: {error}.") from None
    columns = list(COLUMNS)
    if rows and is_header(rows[0][1]):
        columns = [ALIASES.get(name.lower(), name.lower()) for name in rows.pop(0)[1]]
        unknown = [name for name in columns if name not in COLUMNS + EXPORT_COLUMNS]
        if unknown:
            raise FileRefused(
                f"Unknown column {unknown[0]!r} in the header; the columns are "
                f"{', '.join(COLUMNS)} (only conference_id, or id, is required)."
            )
        if len(set(columns)) < len(columns):
            raise FileRefused("A column is named twice in the header.")
        if "conference_id" not in columns:
            raise FileRefused("The header names no conference_id (or id) column.")
    if not rows:
        raise FileRefused("The file has no conference ids.")
    if len(rows) > MAX_ROWS:
        raise FileRefused(f"The file has {len(rows)} rows; import at most {MAX_ROWS} at once.")
    return rows, columns


def is_header(cells):
    """A row naming the id column, or whose every cell is a column name, is a header."""
    names = [cell.lower() for cell in cells if cell]
    known = set(COLUMNS) | set(EXPORT_COLUMNS) | set(ALIASES)
    return any(name in ("conference_id", *ALIASES) for name in names) or all(
        name in known for name in names
    )


def check_row(line, cells, columns):
    """The row as a Row, or raise ValidationError saying why it is refused."""
    if len(cells) > len(columns):
        raise ValidationError(
            f"it has {len(cells)} columns; expected at most {len(columns)} ({', '.join(columns)})"
        )
    values = dict(zip(columns, cells, strict=False))
    conference_id = values.get("conference_id", "")
    if not conference_id:
        raise ValidationError("it has no conference id")
    tracking.validate_conference_id(conference_id)
    label = values.get("label", "")
    if len(label) > MAX_LABEL:
        raise ValidationError(f"the label is longer than {MAX_LABEL} characters")
    tags = sorted({tag.lower() for tag in split_tags(values.get("tags", ""))})
    for tag in tags:
        if len(tag) > MAX_TAG:
            raise ValidationError(f"the tag {tag[:20]!r}... is longer than {MAX_TAG} characters")
    return Row(line=line, conference_id=conference_id, label=label, tags=tags)


def split_tags(text):
    return [tag.strip() for tag in text.replace(";", ",").split(",") if tag.strip()]


def shown(cells):
    text = ",".join(cells)
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


def import_conferences(*, account, data):
    """Check every row of the CSV (bytes or text), then track the new ids on the account
    in one transaction, or none of them if any row is refused. Raises FileRefused."""
    lines, columns = read_rows(data)
    result = ImportResult(account=account)
    rows, first_line = [], {}
    for line, cells in lines:
        try:
            row = check_row(line, cells, columns)
            earlier = first_line.get(row.conference_id)
            if earlier is not None:
                raise ValidationError(f"{row.conference_id} is on line {earlier} already")
        except ValidationError as error:
            result.refused.append(Refusal(line, shown(cells), "; ".join(error.messages)))
            continue
        first_line[row.conference_id] = line
        rows.append(row)
    with transaction.atomic():
        existing = set(
            Conference.objects.filter(
                account=account, conference_id__in=[row.conference_id for row in rows]
            ).values_list("conference_id", flat=True)
        )
        new = [row for row in rows if row.conference_id not in existing]
        result.new = [row.conference_id for row in new]
        result.already_tracked = [
            row.conference_id for row in rows if row.conference_id in existing
        ]
        if result.imported:
            Conference.objects.bulk_create(
                [
                    Conference(
                        account=account,
                        conference_id=row.conference_id,
                        label=row.label,
                        tags=row.tags,
                    )
                    for row in new
                ],
                ignore_conflicts=True,  # tracked meanwhile by someone else: theirs stays
                batch_size=1000,
            )
    return result
