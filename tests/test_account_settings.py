"""An account's budget and base URL: refused with the reason at every entry (model,
admin, commands), checked in existing rows by migration 0015, and shown as misconfigured
(never a 500) when a bad value is stored anyway."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from conferences.models import Account, Conference, PollStatus, validate_api_host
from tests.conftest import make_account, make_conference, process_env, reload, requests_seen

pytestmark = pytest.mark.django_db

# tests/settings.py allows api.catapult.inetwork.com, 127.0.0.1 and localhost.
REFUSED_URLS = {
    # Python's parser reads the host after the "@", urllib3 (which requests uses) the
    # one before the backslash: the credentials would go to evil.example.
    "http://evil.example\\@127.0.0.1/": "backslash",
    "http://127.0.0.1\\@evil.example/": "backslash",
    "http://127.0.0.1:80@evil.example/": "user name or password",
    "http://user:pw@127.0.0.1/": "user name or password",
    "http://@127.0.0.1/": "user name or password",
    "http://127.0.0.1%2f@evil.example": "user name or password",
    "http://127.0.0.1;@evil.example/": "user name or password",
    # urllib3 decodes a percent-encoded host, Python's parser does not.
    "http://%31%32%37.0.0.1/": "urllib3 reads '127.0.0.1', urllib.parse '%31%32%37.0.0.1'",
    "http://local%68ost/": "names its host ambiguously",
    "http://[::1%25lo]/": "names its host ambiguously",
    "http://127.0.0.1#@evil.example/": "fragment",
    "http://127.0.0.1?next=http://evil.example/": "query",
    "http://[::1]/": "'::1' is not an allowed API host",
    "http://127.0.0.1.evil.example/": "'127.0.0.1.evil.example' is not an allowed API host",
    "http://127.0.0.1./": "'127.0.0.1.' is not an allowed API host",
    "http://127.1/": "'127.1' is not an allowed API host",
    "http://2130706433/": "'2130706433' is not an allowed API host",
    "https://evil.example": "'evil.example' is not an allowed API host",
    "http:///v1": "is not an allowed API host",
    "ftp://127.0.0.1/": "http:// or https://",
    "javascript:alert(document.cookie)": "http:// or https://",
    "//127.0.0.1/": "http:// or https://",
    "http://127.0.0.1\t/": "'\\t'",
    "http://127.0.0.1 /": "' '",
    " http://127.0.0.1/": "' '",
    "http://127.0.0.1/\n": "'\\n'",
    "http://127.0.0.1\r\nHost: evil.example/": "'\\r'",
    "http://127.0.0.1\x00.evil.example/": "'\\x00'",
    "http://127.0.0.1\u200b/": "'\\u200b'",
    "http://ⓛocalhost/": "'ⓛ'",
    "http://127.0.0.1:99999/": "not a URL confwatch can read",
    "http://127.0.0.1:http/": "not a URL confwatch can read",
    "http://127.0.0.1%00/": "not a URL confwatch can read",
    "": "http or https URL",
}
ALLOWED_URLS = {
    "https://api.catapult.inetwork.com": "api.catapult.inetwork.com",
    "https://api.catapult.inetwork.com/": "api.catapult.inetwork.com",
    "http://127.0.0.1:8765": "127.0.0.1",
    "http://LOCALHOST:8765/": "localhost",
    "HTTP://localhost/base/path": "localhost",
}


@pytest.mark.parametrize("url", list(REFUSED_URLS))
def test_a_base_url_that_parsers_could_read_differently_is_refused_with_the_reason(url):
    with pytest.raises(ValidationError) as refused:
        validate_api_host(url)

    assert REFUSED_URLS[url] in refused.value.messages[0]


@pytest.mark.parametrize("url", list(ALLOWED_URLS))
def test_a_plain_base_url_on_the_allow_list_is_accepted(url):
    validate_api_host(url)

    account = make_account(base_url=url)
    assert reload(account).base_url == url


def test_the_allow_list_judges_the_host_urllib3_connects_to():
    from urllib3.util import parse_url

    for url, host in ALLOWED_URLS.items():
        assert parse_url(url).host == host
    # The one that fooled the old check: allowed by urllib.parse, sent elsewhere.
    assert parse_url("http://evil.example\\@127.0.0.1/").host == "evil.example"


# ---------------------------------------------------------------- budget, every entry

BAD_BUDGETS = {
    "nan": "finite number",
    "inf": "finite number",
    "-inf": "finite number",
    "1e308": "between 0.05 and 10000",
    "10000.5": "between 0.05 and 10000",
    "0.01": "between 0.05 and 10000",
    "0": "between 0.05 and 10000",
    "-1": "between 0.05 and 10000",
}


@pytest.mark.parametrize("budget", list(BAD_BUDGETS))
def test_the_model_refuses_a_budget_that_is_not_finite_or_out_of_bounds(budget):
    with pytest.raises(ValidationError) as refused:
        make_account(request_budget=float(budget))

    assert BAD_BUDGETS[budget] in refused.value.message_dict["request_budget"][0]
    assert not Account.objects.exists()


@pytest.mark.parametrize("budget", [0.05, 1, 10_000])
def test_the_bounds_themselves_are_accepted(budget):
    assert reload(make_account(request_budget=budget)).request_budget == budget


def add_account(*args):
    base = ["add_account", "acme", "--user-id", "u-1", "--token", "t", "--secret", "s"]
    call_command(*base, "--base-url", "http://127.0.0.1:8765", *args)


@pytest.mark.parametrize("budget", ["nan", "inf", "1e308", "NaN", "-inf", "0.001"])
def test_add_account_refuses_a_bad_budget_naming_the_option_and_creates_nothing(budget):
    with pytest.raises(CommandError) as refused:
        add_account(f"--budget={budget}")

    assert str(refused.value).startswith("Account acme not saved: --budget: The request budget")
    assert not Account.objects.exists()


def test_add_account_keeps_an_existing_account_as_it_was_when_the_budget_is_refused():
    account = make_account(name="acme", request_budget=2.0)

    with pytest.raises(CommandError, match="--budget"):
        add_account("--budget", "inf")

    assert reload(account).request_budget == 2.0


def test_add_account_refuses_an_ambiguous_base_url_naming_the_option():
    with pytest.raises(CommandError) as refused:
        add_account("--base-url", "http://evil.example\\@127.0.0.1/")

    assert "--base-url: The base URL must not contain a backslash" in str(refused.value)
    assert not Account.objects.exists()


def test_add_account_exits_non_zero_with_the_reason_on_a_nan_budget():
    result = subprocess.run(
        [sys.executable, "manage.py", "add_account", "acme", "--user-id", "u-1"]
        + ["--token", "t", "--secret", "s", "--budget", "nan"],
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "--budget: The request budget must be a finite number, not nan." in result.stderr
    assert "Traceback" not in result.stderr
    assert not Account.objects.exists()


def test_the_demo_setup_refuses_a_bad_budget_with_a_clear_error(simulator):
    with pytest.raises(CommandError, match="demo account is refused: The request budget"):
        call_command("demo_setup", "--simulator-url", simulator.url, "--budget", "inf")

    assert not Account.objects.exists()


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", password="correct horse battery")
    client.force_login(user)
    return client


def account_form(account, **changes):
    form = {
        "name": account.name,
        "user_id": account.user_id,
        "base_url": account.base_url,
        "request_budget": "1",
    }
    form.update(changes)
    return form


@pytest.mark.parametrize("budget", ["1e308", "0.01", "10001"])
def test_the_admin_puts_an_out_of_bounds_budget_error_on_the_field(admin, budget):
    account = make_account(request_budget=2.0)

    response = admin.post(
        f"/admin/conferences/account/{account.pk}/change/",
        account_form(account, request_budget=budget),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["request_budget"]
    assert "between 0.05 and 10000 requests per second" in errors["request_budget"][0]
    assert reload(account).request_budget == 2.0


@pytest.mark.parametrize("budget", ["nan", "inf", "-inf"])
def test_the_admin_refuses_a_budget_that_is_not_a_number(admin, budget):
    response = admin.post(
        "/admin/conferences/account/add/",
        {
            "name": "acme",
            "user_id": "u-1",
            "base_url": "http://127.0.0.1:8765",
            "request_budget": budget,
            "api_token": "t",
            "api_secret": "s",
        },
    )

    assert response.status_code == 200
    assert "request_budget" in response.context["adminform"].form.errors
    assert not Account.objects.exists()


def test_the_admin_refuses_an_ambiguous_base_url_on_the_field(admin):
    account = make_account()

    response = admin.post(
        f"/admin/conferences/account/{account.pk}/change/",
        account_form(
            account, base_url="http://127.0.0.1:80@evil.example/", api_token="t", api_secret="s"
        ),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "user name or password" in " ".join(errors["base_url"])
    assert reload(account).base_url == account.base_url


def test_the_admin_shows_the_budget_bounds_to_the_browser(admin):
    page = admin.get("/admin/conferences/account/add/").content.decode()

    assert 'min="0.05"' in page and 'max="10000.0"' in page
    assert "(0.05 to 10,000)" in page


# ---------------------------------------------------------------- stored bad values


def store(account, **columns):
    """Write values as raw SQL, the way no entry would let them in."""
    with connection.cursor() as cursor:
        for column, value in columns.items():
            cast = "::float8" if column == "request_budget" else ""
            cursor.execute(
                f"UPDATE conferences_account SET {column} = %s{cast} WHERE id = %s",
                [value, account.pk],
            )


@pytest.mark.parametrize(
    "columns",
    [
        {"request_budget": "NaN"},
        {"request_budget": "Infinity"},
        {"request_budget": "-Infinity"},
        {"request_budget": "1e308"},
        {"base_url": "http://evil.example\\@127.0.0.1/"},
    ],
    ids=["nan", "infinity", "minus-infinity", "1e308", "backslash-url"],
)
def test_every_page_answers_and_says_the_account_is_misconfigured(admin, columns):
    account = make_account(name="acme")
    good = make_account(name="globex", request_budget=5.0)
    conference = make_conference(account, "conf-1")
    make_conference(good, "conf-2")
    store(account, **columns)

    overview = admin.get("/")
    strip = admin.get("/?part=accounts", HTTP_HX_REQUEST="true")
    detail = admin.get(f"/conferences/{conference.pk}/")
    health = admin.get("/health/")
    changelist = admin.get("/admin/conferences/account/")
    change = admin.get(f"/admin/conferences/account/{account.pk}/change/")

    for response in (overview, strip, detail, health, changelist, change):
        assert response.status_code == 200
    for response in (overview, strip):
        text = response.content.decode()
        assert text.count("misconfigured</span>") == 1
        assert "budget 5 req/s" in text  # the other account is shown as always
    assert "Account acme is misconfigured: The " in detail.content.decode()
    assert health.json()["misconfigured_accounts"] == 1
    assert health.json()["status"] == "degraded"
    assert "Misconfigured: The " in changelist.content.decode()
    assert "Misconfigured: The " in change.content.decode()


@pytest.mark.parametrize("column", ["request_budget", "base_url"])
def test_testing_the_credentials_of_a_misconfigured_account_sends_nothing(admin, simulator, column):
    account = make_account(simulator)
    store(account, **{column: "NaN" if column == "request_budget" else simulator.url + "?a=1"})
    before = requests_seen(simulator)

    response = admin.post(
        "/admin/conferences/account/",
        {"action": "check_credentials", "_selected_action": [account.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Account acme: not tested: misconfigured: The " in response.content.decode()
    assert requests_seen(simulator) == before


def test_an_account_is_shown_misconfigured_once_its_host_leaves_the_allow_list(admin, settings):
    account = make_account(name="acme", base_url="http://localhost:8765")
    settings.CONFWATCH_ALLOWED_API_HOSTS = ["api.catapult.inetwork.com", "127.0.0.1"]

    text = admin.get("/").content.decode()

    assert "misconfigured</span> &#x27;localhost&#x27; is not an allowed API host" in text
    assert account.settings_problems() == [
        "'localhost' is not an allowed API host "
        "(CONFWATCH_ALLOWED_API_HOSTS: api.catapult.inetwork.com, 127.0.0.1)."
    ]


def test_a_good_account_has_no_settings_problem_and_health_says_ok(client):
    make_account()

    data = client.get("/health/").json()

    assert data["misconfigured_accounts"] == 0 and data["status"] == "ok"


# ---------------------------------------------------------------- migration 0015


def migration_0015():
    """The migration that checks the accounts (found by name: the number may change)."""
    folder = Path(__file__).resolve().parent.parent / "conferences" / "migrations"
    (path,) = folder.glob("*_account_settings_checked.py")
    return importlib.import_module(f"conferences.migrations.{path.stem}")


def test_the_upgrade_fixes_bad_budgets_says_so_and_deletes_nothing():
    accounts = {
        name: make_account(name=name, base_url="http://127.0.0.1:8765", request_budget=3.0)
        for name in ("nan", "inf", "minus-inf", "huge", "tiny", "good")
    }
    for name, value in [
        ("nan", "NaN"),
        ("inf", "Infinity"),
        ("minus-inf", "-Infinity"),
        ("huge", "1e308"),
        ("tiny", "0.01"),
    ]:
        store(accounts[name], request_budget=value)
    make_conference(accounts["nan"], "conf-kept")
    printed = []

    migration_0015().check_accounts(apps, None, write=printed.append)

    budgets = dict(Account.objects.values_list("name", "request_budget"))
    assert budgets == {
        "nan": 1.0,
        "inf": 1.0,
        "minus-inf": 1.0,
        "huge": 10_000.0,
        "tiny": 0.05,
        "good": 3.0,
    }
    nan = reload(accounts["nan"])
    assert nan.problem == PollStatus.ACCOUNT_ERROR
    assert nan.problem_message == (
        "Changed when upgrading: its request budget nan is not a finite number from 0.05 "
        "to 10000: it was set to 1/s; check it in the admin."
    )
    assert nan.problem_at is not None and not nan.is_paused()
    assert printed[0] == f"Account nan: {nan.problem_message}"
    assert sorted(line.split(":")[0] for line in printed) == [
        "Account huge",
        "Account inf",
        "Account minus-inf",
        "Account nan",
        "Account tiny",
    ]
    assert reload(accounts["good"]).problem == ""
    assert Conference.objects.filter(conference_id="conf-kept").exists()
    assert all(not account.settings_problems() for account in Account.objects.all())


def test_the_upgrade_pauses_an_account_whose_base_url_is_not_plain_and_keeps_it(settings):
    bad = make_account(name="sneaky")
    store(bad, base_url="http://evil.example\\@127.0.0.1/")
    elsewhere = make_account(name="elsewhere", base_url="http://localhost:8765")
    settings.CONFWATCH_ALLOWED_API_HOSTS = ["api.catapult.inetwork.com", "127.0.0.1"]
    printed = []

    migration_0015().check_accounts(apps, None, write=printed.append)

    bad = reload(bad)
    assert bad.base_url == "http://evil.example\\@127.0.0.1/"
    assert bad.is_paused()
    assert bad.problem == PollStatus.ACCOUNT_ERROR
    assert "must not contain a backslash" in bad.problem_message
    assert "paused until the base URL is fixed" in bad.problem_message
    # A host the migrating environment does not allow is reported, not paused.
    assert not reload(elsewhere).is_paused() and reload(elsewhere).problem == ""
    assert printed == [
        f"Account sneaky: {bad.problem_message}",
        "Account elsewhere: its base URL's host 'localhost' is not on "
        "CONFWATCH_ALLOWED_API_HOSTS here; allow it where confwatch runs, or change the "
        "base URL.",
    ]


def test_a_paused_account_is_unpaused_by_fixing_its_base_url_with_its_credentials(admin):
    account = make_account(name="sneaky")
    store(account, base_url="http://evil.example\\@127.0.0.1/")
    migration_0015().check_accounts(apps, None, write=lambda line: None)

    response = admin.post(
        f"/admin/conferences/account/{account.pk}/change/",
        account_form(
            reload(account), base_url="http://127.0.0.1:8765", api_token="t2", api_secret="s2"
        ),
    )

    assert response.status_code == 302
    account = reload(account)
    assert not account.is_paused() and account.settings_problems() == []
