"""Conference ids are checked once, where they enter the registry
(conferences/registry/tracking.py):
the track form, the `track` command and `track_conferences` itself."""

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from conferences.models import Conference
from conferences.registry.tracking import (
    CONFERENCE_ID_PATTERN,
    MAX_IDS_PER_REQUEST,
    parse_conference_ids,
    track_conferences,
    validate_conference_id,
)
from conferences.web.forms import TrackForm
from tests.conftest import make_account


def refusal(value) -> str:
    """The one message validate_conference_id gives for value."""
    with pytest.raises(ValidationError) as excinfo:
        validate_conference_id(value)
    (message,) = excinfo.value.messages
    return message


def messages_of(text) -> list[str]:
    with pytest.raises(ValidationError) as excinfo:
        parse_conference_ids(text)
    return excinfo.value.messages


@pytest.mark.parametrize(
    "conference_id",
    ["conf-ixaagbn5wcyskisiy", "c", "42", "Conf_A.b~c-d", "a.", "a..b", "x" * 100],
)
def test_catapult_style_ids_are_accepted(conference_id):
    validate_conference_id(conference_id)

    assert CONFERENCE_ID_PATTERN.fullmatch(conference_id)
    assert parse_conference_ids(conference_id) == [conference_id]


@pytest.mark.parametrize("conference_id", [".", ".."])
def test_dot_and_dot_dot_are_refused_as_conference_ids(conference_id):
    message = refusal(conference_id)

    assert message == (
        f"{conference_id!r} is not a conference id: "
        "it must start with a letter (a-z, A-Z) or a digit (0-9)."
    )


@pytest.mark.parametrize(
    ("conference_id", "reason"),
    [
        ("", "it is empty"),
        ("-conf", "it must start with a letter (a-z, A-Z) or a digit (0-9)"),
        ("_conf", "it must start with a letter"),
        ("~conf", "it must start with a letter"),
        (".hidden", "it must start with a letter"),
        ("étude", "it must start with a letter"),
        ("conf/1", "it contains '/'"),
        ("conf-a/../b", "it contains '/'"),
        ("conf?x=1", "it contains '?'"),
        ("conf%2F1", "it contains '%'"),
        ("conf#1", "it contains '#'"),
        ("conf-é", "it contains 'é'"),
        ("conf 1", "it contains ' '"),
        ("conf-1\n", "it contains '\\n'"),
        ("conf\x00", "it contains '\\x00'"),
        ("x" * 101, "it is 101 characters long; at most 100 are allowed"),
    ],
)
def test_a_refused_id_is_named_with_the_reason(conference_id, reason):
    message = refusal(conference_id)

    assert message.startswith(f"{conference_id[:40]!r}")
    assert f"is not a conference id: {reason}" in message


def test_a_long_refused_id_is_shortened_in_the_message():
    message = refusal("a/" + "b" * 200)

    assert message.startswith("'a/" + "b" * 38 + "'… is not a conference id")
    assert len(message) < 150


def test_something_other_than_text_is_refused():
    assert refusal(42) == "A conference id must be text."


def test_pasted_ids_split_on_whitespace_commas_semicolons_and_newlines():
    text = " conf-1,conf-2;conf-3\nconf-4\r\n\tconf-5 ; , conf-6,, "

    assert parse_conference_ids(text) == [f"conf-{n}" for n in range(1, 7)]


def test_repeated_ids_are_kept_once_in_the_order_first_given():
    assert parse_conference_ids("b a; b, c a") == ["b", "a", "c"]


def test_every_refused_id_in_a_paste_is_named_once():
    messages = messages_of("conf-ok, .., conf/1; .. conf-ok")

    assert messages == [
        "'..' is not a conference id: it must start with a letter (a-z, A-Z) or a digit (0-9).",
        "'conf/1' is not a conference id: it contains '/'; only a-z, A-Z, 0-9 and - _ . ~ "
        "are allowed.",
    ]


def test_many_refused_ids_are_summarised_after_the_first_ten():
    messages = messages_of(" ".join(f"bad/{n}" for n in range(25)))

    assert len(messages) == 11
    assert messages[0].startswith("'bad/0' is not a conference id")
    assert messages[-1] == "... and 15 more ids that are refused."


@pytest.mark.parametrize("text", ["", "   ", ",;\n"])
def test_an_empty_paste_asks_for_at_least_one_id(text):
    assert messages_of(text) == ["Give at least one conference id."]


def test_more_ids_than_allowed_at_once_are_refused():
    text = " ".join(f"conf-{n}" for n in range(MAX_IDS_PER_REQUEST + 1))

    assert messages_of(text) == [f"Track at most {MAX_IDS_PER_REQUEST} conferences at once."]
    assert len(parse_conference_ids(text.rsplit(" ", 1)[0])) == MAX_IDS_PER_REQUEST


@pytest.mark.django_db
def test_tracking_a_refused_id_raises_and_writes_nothing():
    account = make_account()

    with pytest.raises(ValidationError) as excinfo:
        track_conferences(account=account, conference_ids=["conf-ok", "..", "a/b"])

    assert excinfo.value.messages[0].startswith("'..' is not a conference id")
    assert "'a/b' is not a conference id" in excinfo.value.messages[1]
    assert not Conference.objects.exists()


@pytest.mark.django_db
def test_tracking_good_ids_still_adds_them_and_reports_those_already_tracked():
    account = make_account()
    track_conferences(account=account, conference_ids=["conf-1"])

    added, existing = track_conferences(account=account, conference_ids=iter(["conf-1", "c.2"]))

    assert (added, existing) == (["c.2"], ["conf-1"])
    assert sorted(Conference.objects.values_list("conference_id", flat=True)) == ["c.2", "conf-1"]


@pytest.mark.django_db
def test_the_track_command_refuses_dot_dot_with_a_clear_error_and_writes_nothing():
    make_account()
    out = StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("track", "--account", "acme", "conf-ok", "..", stdout=out)

    assert str(excinfo.value) == (
        "'..' is not a conference id: it must start with a letter (a-z, A-Z) or a digit (0-9)."
    )
    assert out.getvalue() == ""
    assert not Conference.objects.exists()


@pytest.mark.django_db
def test_the_track_form_names_the_refused_id():
    account = make_account()

    form = TrackForm({"account": account.pk, "conference_ids": "conf-ok; ..", "tags": ""})

    assert not form.is_valid()
    assert form.errors["conference_ids"] == [
        "'..' is not a conference id: it must start with a letter (a-z, A-Z) or a digit (0-9)."
    ]
