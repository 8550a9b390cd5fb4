"""Bulk import of conference ids from CSV: the service, the admin page, the command."""

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from conferences.models import Conference
from conferences.registry import importing, roles
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"

GOOD = """conf-new1,Board call,acme;VIP
conf-new2
conf-known,Renamed,other
"""

MIXED = """conference_id,label,tags
conf-new1,Board call,acme
conf-known,,
conf/../etc,Sneaky,
,No id at all,
conf-new1,Twice,
conf-new2,Too,many,columns
conf-new3,{long_label},
conf-new4,,{long_tag}
"""


@pytest.fixture
def account(db):
    account = make_account(name="acme")
    make_conference(account, "conf-known", label="Known", tags=["old"])
    return account


def tracked(account):
    return dict(Conference.objects.filter(account=account).values_list("conference_id", "label"))


def test_good_rows_are_added_with_their_labels_and_tags_and_known_ids_left_alone(account):
    result = importing.import_conferences(account=account, data=GOOD)

    assert result.imported
    assert result.added == ["conf-new1", "conf-new2"]
    assert result.already_tracked == ["conf-known"]
    assert result.summary() == "Added 2 conferences to acme; 1 already tracked (unchanged)."
    new = Conference.objects.get(conference_id="conf-new1")
    assert new.label == "Board call" and new.tags == ["acme", "vip"]
    assert new.poll_status == "pending" and not new.paused
    known = Conference.objects.get(conference_id="conf-known")
    assert known.label == "Known" and known.tags == ["old"]


def test_one_refused_row_imports_nothing_and_every_refusal_says_why(account):
    data = MIXED.format(long_label="x" * 201, long_tag="t" * 51)

    result = importing.import_conferences(account=account, data=data)

    assert not result.imported and result.added == []
    assert tracked(account) == {"conf-known": "Known"}
    reasons = {refusal.line: refusal.reason for refusal in result.refused}
    assert reasons[4].startswith("'conf/../etc' is not a conference id: it contains '/'")
    assert reasons[5] == "it has no conference id"
    assert reasons[6] == "conf-new1 is on line 2 already"
    assert reasons[7] == "it has 4 columns; expected at most 3 (conference_id, label, tags)"
    assert reasons[8] == "the label is longer than 200 characters"
    assert reasons[9].startswith("the tag 'tttttttttttttttttttt'... is longer than 50")
    assert len(reasons) == 6
    assert result.new == ["conf-new1"] and result.already_tracked == ["conf-known"]
    assert result.summary() == (
        "Nothing was imported: 6 rows refused (below). Fix them and import again; then "
        "1 conference would be added and 1 is already tracked on acme."
    )


def test_the_same_file_imported_twice_adds_nothing_the_second_time(account):
    importing.import_conferences(account=account, data=GOOD)

    again = importing.import_conferences(account=account, data=GOOD)

    assert again.imported and again.added == []
    assert again.already_tracked == ["conf-new1", "conf-new2", "conf-known"]
    assert Conference.objects.filter(account=account).count() == 3


def test_an_id_tracked_on_another_account_is_new_on_this_one(account):
    other = make_account(name="globex")

    result = importing.import_conferences(account=other, data="conf-known\n")

    assert result.added == ["conf-known"]
    assert Conference.objects.filter(conference_id="conf-known").count() == 2


def test_a_header_names_the_columns_in_any_order_and_blank_lines_are_skipped(account):
    data = '\ufefftags,Conference_ID,label\r\n\r\n"acme, vip",conf-a,Board call\r\n,conf-b,\r\n'

    result = importing.import_conferences(account=account, data=data.encode())

    assert result.added == ["conf-a", "conf-b"]
    assert Conference.objects.get(conference_id="conf-a").tags == ["acme", "vip"]
    assert Conference.objects.get(conference_id="conf-a").label == "Board call"


@pytest.mark.parametrize("header", ["id,label,tags", "conference_id,label,tags", "ID,Label"])
def test_the_readmes_header_and_the_exports_header_are_headers_never_ids(account, header):
    result = importing.import_conferences(account=account, data=f"{header}\nconf-a,Board call\n")

    assert result.imported and result.added == ["conf-a"]
    assert tracked(account) == {"conf-known": "Known", "conf-a": "Board call"}


def test_a_header_of_column_names_without_an_id_column_is_refused_not_tracked(account):
    with pytest.raises(importing.FileRefused, match="no conference_id \\(or id\\) column"):
        importing.import_conferences(account=account, data="label,tags\nBoard call,acme\n")
    assert tracked(account) == {"conf-known": "Known"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("id,conference_id\nconf-a,conf-b\n", "named twice"),
        (b"conf-a,\xff\xfe\n", "not UTF-8"),
        ("conference_id,lable\nconf-a,x\n", "Unknown column 'lable'"),
        ("conference_id,label,label\nconf-a,x,y\n", "named twice"),
        ("\n\n", "no conference ids"),
        ("conference_id,label\n", "no conference ids"),
        ('conf-a,"unterminated\n', "not CSV"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(account, data, message):
    with pytest.raises(importing.FileRefused, match=message):
        importing.import_conferences(account=account, data=data)
    assert tracked(account) == {"conf-known": "Known"}


def test_a_file_with_too_many_rows_is_refused_whole(account, monkeypatch):
    monkeypatch.setattr(importing, "MAX_ROWS", 3)

    with pytest.raises(importing.FileRefused, match="has 4 rows; import at most 3"):
        importing.import_conferences(account=account, data="a1\na2\na3\na4\n")


# ---------------------------------------------------------------- the admin page


@pytest.fixture
def support_admin(client, db):
    client.force_login(roles.create_user(username="adam", role="admin", password=PASSWORD))
    return client


def test_the_admin_imports_an_uploaded_file_and_logs_each_addition(support_admin, account):
    upload = SimpleUploadedFile("conferences.csv", GOOD.encode(), content_type="text/csv")

    response = support_admin.post(
        "/admin/conferences/conference/import/", {"account": account.pk, "file": upload}
    )

    text = response.content.decode()
    assert response.status_code == 200
    assert "Added 2 conferences to acme; 1 already tracked (unchanged)." in text
    assert "conf-new1, conf-new2" in text and "conf-known" in text
    log = LogEntry.objects.order_by("pk")
    assert [entry.object_repr for entry in log] == ["Board call", "conf-new2"]
    assert {(entry.user.username, entry.action_flag) for entry in log} == {("adam", ADDITION)}


def test_the_admin_shows_every_refused_row_and_imports_nothing(support_admin, account):
    response = support_admin.post(
        "/admin/conferences/conference/import/",
        {"account": account.pk, "text": "conf-ok\nbad id!\nconf-ok\n"},
    )

    text = response.content.decode()
    assert "Nothing was imported: 2 rows refused" in text
    assert "Line 2:" in text and "contains &#x27; &#x27;" in text
    assert "Line 3: conf-ok is on line 1 already" in text
    assert "Would be added" in text
    assert tracked(account) == {"conf-known": "Known"}
    assert not LogEntry.objects.exists()


def test_the_admin_asks_for_a_file_or_pasted_text(support_admin, account):
    response = support_admin.post("/admin/conferences/conference/import/", {"account": account.pk})

    assert "Upload a file or paste the CSV" in response.content.decode()


def test_the_admin_says_when_a_file_cannot_be_read(support_admin, account):
    upload = SimpleUploadedFile("conferences.csv", b"\xff\xfe\x00", content_type="text/csv")

    response = support_admin.post(
        "/admin/conferences/conference/import/", {"account": account.pk, "file": upload}
    )

    assert "The file is not UTF-8 text" in response.content.decode()


# ---------------------------------------------------------------- the command


def run(*args):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("import_conferences", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_imports_a_file(account, tmp_path):
    path = tmp_path / "conferences.csv"
    path.write_text(GOOD)

    out, err = run("--account", "acme", str(path))

    assert out == "Added 2 conferences to acme; 1 already tracked (unchanged).\n"
    assert err == ""
    assert set(tracked(account)) == {"conf-known", "conf-new1", "conf-new2"}


def test_the_command_prints_each_refused_row_and_fails_writing_nothing(account, tmp_path):
    path = tmp_path / "conferences.csv"
    path.write_text("conf-ok\nbad id!\n")

    with pytest.raises(CommandError, match="Nothing was imported: 1 row refused") as raised:
        call_command("import_conferences", "--account", "acme", str(path), stderr=(err := Err()))

    assert raised.value.returncode == 1
    assert "refused line 2: 'bad id!' is not a conference id" in err.text
    assert tracked(account) == {"conf-known": "Known"}


class Err:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_the_command_names_an_unknown_account_or_a_missing_file(account, tmp_path):
    with pytest.raises(CommandError, match="No account named 'nope'"):
        run("--account", "nope", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="Cannot read .*missing.csv: No such file"):
        run("--account", "acme", str(tmp_path / "missing.csv"))
