"""Channels end to end: the simulator, the poller, the outbox, a real SMTP server and real
local HTTP receivers (Apprise's json:// and confwatch's signed webhook://)."""

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from conferences.alerting import channels, fanout, sender, subscriptions
from conferences.models import Delivery, Subscription
from conferences.polling import rounds
from conferences.registry import crypto, roles
from tests.conftest import make_conference, reload
from tests.http_receiver import running_receiver
from tests.test_settings import STRONG_KEY, settings_load

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-the-webhook-test"


def readme_verify():
    """The README's five-line verification snippet, run as it is written."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("<!-- webhook-verify -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, re.S).group(1)
    namespace = {}
    exec(code, namespace)  # noqa: S102 - the README's own snippet
    return namespace["verify"]


def poll():
    return rounds.poll_round(force=True)


@pytest.fixture
def receiver():
    with running_receiver() as server:
        yield server


@pytest.fixture
def other_receiver():
    with running_receiver() as server:
        yield server


@pytest.fixture
def board_call(account, sim_client):
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id, label="Board call", tags=["acme"])
    poll()  # first observed: created
    fanout.run_pass()
    return conference


def subscribe(target, **values):
    subscription, created = subscriptions.subscribe(email=target, kinds=["state"], **values)
    assert created
    return subscription


def start_call(sim_client, conference):
    sim_client.add_member(conference.conference_id, call_id="c-1")
    poll()


def later(seconds):
    return timezone.now() + timedelta(seconds=seconds)


def test_a_state_change_reaches_an_email_a_json_channel_and_a_signed_webhook_once_each(
    board_call, sim_client, mailsink, receiver, other_receiver
):
    subscribe("ann@example.com")
    subscribe(f"json://{receiver.host}/alerts")
    webhook = subscribe(f"webhook://{other_receiver.host}/confwatch", secret=SECRET)

    start_call(sim_client, board_call)
    summary = fanout.run_pass()
    fanout.run_pass()
    fanout.run_pass()

    assert (summary.sent, summary.failed, summary.retrying) == (3, 0, 0)
    [email] = mailsink.wait_for(1)
    [message] = receiver.wait_for(1)
    [hook] = other_receiver.wait_for(1)
    title = f"Board call ({board_call.conference_id}): created -> active"
    assert email["Subject"] == f"[confwatch] {title}"
    sent = json.loads(message.body)
    assert sent["title"] == title
    assert "State: created -> active" in sent["message"]
    assert f"/conferences/{board_call.pk}/" in sent["message"]
    assert "/acknowledge/" in sent["message"]
    assert "/unsubscribe/" not in sent["message"]
    assert readme_verify()(SECRET.encode(), hook.body, hook.headers["x-confwatch-signature"])
    assert not readme_verify()(b"another secret", hook.body, hook.headers["x-confwatch-signature"])
    body = json.loads(hook.body)
    delivery = Delivery.objects.get(subscription=webhook)
    assert hook.headers["x-confwatch-delivery"] == str(delivery.pk)
    assert hook.headers["x-confwatch-timestamp"] == str(body["sent_at_unix"])
    assert body["schema"] == "confwatch.alert/1"
    assert body["event"] == "change"
    assert body["conference"]["id"] == board_call.conference_id
    assert body["conference"]["status"]["state"] == "active"
    [change] = body["changes"]
    assert (change["kind"], change["previous"], change["current"]) == (
        "state_changed",
        "created",
        "active",
    )
    assert body["links"]["conference"].endswith(f"/conferences/{board_call.pk}/")
    assert "/acknowledge/" in body["links"]["acknowledge"]
    assert len(mailsink.messages()) == 1
    assert len(receiver.requests) == 1 and len(other_receiver.requests) == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_channel_answering_500_is_tried_again_and_delivered_once_it_answers_200(
    board_call, sim_client, receiver
):
    subscribe(f"json://{receiver.host}/alerts")
    receiver.answer(500)

    start_call(sim_client, board_call)
    first = fanout.run_pass()
    delivery = Delivery.objects.get()
    assert (first.sent, first.retrying) == (0, 1)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "500" in delivery.last_error
    assert sender.send_pending().sent == 0  # its next try is not due yet

    second = sender.send_pending(now=later(31))

    assert second.sent == 1
    assert (reload(delivery).status, delivery.attempts, delivery.last_error) == ("sent", 2, "")
    assert [entry["result"] for entry in delivery.attempt_log] == ["retry", "sent"]
    assert "500" in delivery.attempt_log[0]["error"]
    assert len(receiver.wait_for(2)) == 2


def test_every_try_of_a_channel_delivery_shows_on_the_conference_page_and_in_the_admin(
    board_call, sim_client, receiver, signed_in, admin_client
):
    subscribe(f"json://{receiver.host}/alerts")
    receiver.answer(500, 503)
    start_call(sim_client, board_call)
    fanout.run_pass()
    sender.send_pending(now=later(31))
    sender.send_pending(now=later(91))
    delivery = Delivery.objects.get()

    page = signed_in.get(f"/conferences/{board_call.pk}/").content.decode()
    detail = admin_client.get(f"/admin/conferences/delivery/{delivery.pk}/change/")

    assert delivery.status == "sent"
    tries = page[page.index('class="tries"') :]
    assert "3 tries" in tries and "error=500" in tries and "error=503" in tries
    assert f"json://{receiver.host}/…" in page
    assert "error=500" in detail.content.decode() and "error=503" in detail.content.decode()


def test_a_channel_that_hangs_times_out_is_retried_and_never_holds_back_the_others(
    board_call, sim_client, receiver, other_receiver, mailsink, settings
):
    settings.CONFWATCH_CHANNEL_TIMEOUT = 0.5
    hanging = subscribe(f"json://{receiver.host}/slow")
    subscribe(f"webhook://{other_receiver.host}/hook", secret=SECRET)
    subscribe("ann@example.com")
    receiver.hang()

    start_call(sim_client, board_call)
    summary = fanout.run_pass()

    assert (summary.sent, summary.retrying) == (2, 1)
    assert len(other_receiver.wait_for(1)) == 1 and len(mailsink.wait_for(1)) == 1
    stuck = Delivery.objects.get(subscription=hanging)
    assert (stuck.status, stuck.attempts) == ("pending", 1)
    assert stuck.last_error

    receiver.release()
    assert sender.send_pending(now=later(31)).sent == 1
    assert reload(stuck).status == "sent"


def test_a_webhook_answering_404_fails_at_once_and_one_that_keeps_answering_503_gives_up(
    board_call, sim_client, receiver, other_receiver
):
    gone = subscribe(f"webhook://{receiver.host}/gone", secret=SECRET)
    busy = subscribe(f"webhook://{other_receiver.host}/busy", secret=SECRET)
    receiver.answer(404)
    other_receiver.answer(*[503] * sender.MAX_ATTEMPTS)

    start_call(sim_client, board_call)
    fanout.run_pass()
    for attempt in range(1, sender.MAX_ATTEMPTS):
        sender.send_pending(now=later(sender.settings.CONFWATCH_SEND_MAX_BACKOFF * attempt + 1))

    failed = Delivery.objects.get(subscription=gone)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "404" in failed.last_error
    given_up = Delivery.objects.get(subscription=busy)
    assert (given_up.status, given_up.attempts) == ("failed", sender.MAX_ATTEMPTS)
    assert given_up.last_error.startswith(f"gave up after {sender.MAX_ATTEMPTS} tries")
    assert len(other_receiver.requests) == sender.MAX_ATTEMPTS


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("nosuch://example.com/x", "Apprise refuses this channel URL"),
        ("slack://only-one-token", "Apprise refuses this channel URL: An invalid Slack"),
        ("webhook:///no-host", "needs a host"),
        ("webhook://example.invalid/hook", "cannot be resolved"),
        ("webhook://127.0.0.1:9/hook", "loopback or private address"),
        ("json://10.1.2.3/hook", "loopback or private address"),
        ("json://[::1]:8080/hook", "loopback or private address"),
    ],
)
def test_unknown_malformed_and_private_channel_urls_are_refused_with_the_reason(
    target, reason, settings
):
    settings.CONFWATCH_ALLOW_PRIVATE_WEBHOOKS = False

    with pytest.raises(ValidationError) as refused:
        subscriptions.subscribe(email=target, kinds=["state"])

    assert reason in " ".join(refused.value.messages)
    assert not Subscription.objects.exists()


def test_a_short_webhook_secret_and_a_secret_for_an_email_are_refused():
    with pytest.raises(ValidationError, match="at least 16"):
        subscriptions.subscribe(email="webhook://127.0.0.1:9/h", secret="short")
    with pytest.raises(ValidationError, match="webhook"):
        subscriptions.subscribe(email="ann@example.com", secret=SECRET)


def test_a_private_host_allowed_when_subscribing_is_refused_when_sending(
    board_call, sim_client, receiver, settings
):
    subscribe(f"webhook://{receiver.host}/hook", secret=SECRET)
    settings.CONFWATCH_ALLOW_PRIVATE_WEBHOOKS = False

    start_call(sim_client, board_call)
    summary = fanout.run_pass()

    delivery = Delivery.objects.get()
    assert (summary.failed, delivery.status) == (1, "failed")
    assert "loopback or private address" in delivery.last_error
    assert receiver.requests == []


def test_a_channel_url_and_its_secret_are_stored_encrypted_and_shown_masked(receiver):
    url = f"json://user:hunter2-password@{receiver.host}/path/token-xyz"
    subscription = subscribe(url)
    webhook = subscribe(f"webhook://{receiver.host}/hook/token-abc", secret=SECRET)

    row = Subscription.objects.filter(pk=subscription.pk).values().get()
    stored = json.dumps(
        [row, Subscription.objects.filter(pk=webhook.pk).values().get()], default=str
    )
    assert "hunter2" not in stored and "token-xyz" not in stored and "token-abc" not in stored
    assert SECRET not in stored
    assert crypto.decrypt(row["channel_encrypted"]) == url
    assert re.fullmatch(rf"json://{receiver.host}/… #[0-9a-f]{{6}}", subscription.email)
    assert subscription.email in subscriptions.describe(subscription)


def test_subscribing_the_same_channel_twice_makes_one_subscription(receiver):
    subscribe(f"json://{receiver.host}/a")
    again, created = subscriptions.subscribe(email=f"json://{receiver.host}/a", kinds=["state"])
    other, other_created = subscriptions.subscribe(
        email=f"json://{receiver.host}/b", kinds=["state"]
    )

    assert (created, other_created) == (False, True)
    assert again.email != other.email
    assert Subscription.objects.count() == 2


def test_the_subscribe_command_takes_a_channel_and_prints_a_made_secret_once(receiver):
    out = StringIO()
    call_command("subscribe", "--to", f"webhook://{receiver.host}/hook", stdout=out)

    subscription = Subscription.objects.get()
    printed = re.search(r"secret \(shown once, stored encrypted\): (\S+)", out.getvalue())
    assert printed
    assert crypto.decrypt(subscription.webhook_secret_encrypted) == printed.group(1)
    assert f"webhook://{receiver.host}/…" in out.getvalue()
    with pytest.raises(CommandError, match="Apprise refuses"):
        call_command("subscribe", "--to", "nosuch://x", stdout=StringIO())
    with pytest.raises(CommandError, match="target once"):
        call_command("subscribe", "ann@example.com", "--to", "bob@example.com")


def test_a_test_message_reaches_a_webhook_through_the_outbox(receiver):
    subscription = subscribe(f"webhook://{receiver.host}/hook", secret=SECRET)

    delivery = channels.queue_test_message(subscription)
    summary = sender.send_pending()

    assert summary.sent == 1
    [hook] = receiver.wait_for(1)
    body = json.loads(hook.body)
    assert (body["event"], body["conference"], body["changes"]) == ("test", None, [])
    assert body["title"].startswith("Test message: alerts reach webhook://")
    assert readme_verify()(SECRET.encode(), hook.body, hook.headers["x-confwatch-signature"])
    assert reload(delivery).status == "sent"


def test_a_test_message_reaches_an_email_address(db, mailsink):
    subscription = subscribe("ann@example.com")

    channels.queue_test_message(subscription)
    sender.send_pending()

    [message] = mailsink.wait_for(1)
    assert message["Subject"] == "[confwatch] Test message: alerts reach ann@example.com"
    assert "state alerts about every conference" in message.get_body(("plain",)).get_content()


# The Alerts page and the admin.

ALERTS = "/alerts/"


@pytest.fixture
def support_admin(client, db):
    user = roles.create_user(
        username="desk", role="admin", password="correct horse battery", email="desk@example.com"
    )
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def support_viewer(client, db):
    user = roles.create_user(
        username="eye", role="viewer", password="correct horse battery", email="eye@example.com"
    )
    client.force_login(user)
    client.user = user
    return client


def add_on_page(client, target, **fields):
    data = {"email": target, "scope": "all", "kinds": ["state"], **fields}
    return client.post(ALERTS, data, follow=True)


def test_the_alerts_page_subscribes_a_channel_and_shows_it_masked(support_admin, receiver):
    response = add_on_page(support_admin, f"json://user:hunter2@{receiver.host}/token-xyz")

    text = response.content.decode()
    subscription = Subscription.objects.get()
    assert response.status_code == 200
    assert f"json://{receiver.host}/…" in text
    assert "hunter2" not in text and "token-xyz" not in text
    assert subscription.is_channel and subscription.user == support_admin.user


def test_a_webhook_secret_made_on_the_alerts_page_is_shown_once(support_admin, receiver):
    response = add_on_page(support_admin, f"webhook://{receiver.host}/hook")

    secret = crypto.decrypt(Subscription.objects.get().webhook_secret_encrypted)
    assert secret in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert secret not in support_admin.get(ALERTS).content.decode()


def test_the_alerts_page_refuses_a_bad_channel_with_apprises_reason(support_admin):
    response = add_on_page(support_admin, "slack://only-one-token")

    assert "Apprise refuses this channel URL" in response.content.decode()
    assert not Subscription.objects.exists()


def test_a_viewer_cannot_subscribe_a_channel(support_viewer, receiver):
    response = add_on_page(support_viewer, f"json://{receiver.host}/x")

    assert response.status_code == 403
    assert not Subscription.objects.exists()


def test_send_test_message_on_the_alerts_page_queues_one_for_ones_own_subscription_only(
    support_viewer, receiver
):
    own, _ = subscriptions.subscribe(email="eye@example.com", user=support_viewer.user)
    theirs, _ = subscriptions.subscribe(email=f"json://{receiver.host}/x")

    response = support_viewer.post(f"/alerts/{own.pk}/test/", follow=True)
    refused = support_viewer.post(f"/alerts/{theirs.pk}/test/")

    assert "A test message to eye@example.com is on its way" in response.content.decode()
    assert refused.status_code == 404
    [queued] = Delivery.objects.all()
    assert (queued.kind, queued.subscription, queued.status) == ("test", own, "pending")


def test_the_admin_sends_a_test_message_to_the_selected_subscriptions(support_admin, receiver):
    channel = subscribe(f"json://{receiver.host}/x")

    response = support_admin.post(
        "/admin/conferences/subscription/",
        {"action": "send_test_message", "_selected_action": [channel.pk]},
        follow=True,
    )
    sender.send_pending()

    assert "Queued a test message to 1 subscription" in response.content.decode()
    assert reload(Delivery.objects.get()).status == "sent"
    [message] = receiver.wait_for(1)
    assert json.loads(message.body)["title"].startswith("Test message")


def test_a_viewer_is_not_offered_the_admins_test_message_action(support_viewer, receiver):
    subscribe(f"json://{receiver.host}/x")

    page = support_viewer.get("/admin/conferences/subscription/").content.decode()

    assert "send_test_message" not in page


def test_the_admin_sets_a_channel_write_only_and_checks_it(support_admin, receiver):
    fields = {"scope": "all", "kinds": "state", "notify_resolved": "on"}
    refused = support_admin.post(
        "/admin/conferences/subscription/add/",
        {**fields, "email": "", "channel_url": "nosuch://x"},
    )
    added = support_admin.post(
        "/admin/conferences/subscription/add/",
        {**fields, "email": "", "channel_url": f"json://{receiver.host}/token-xyz"},
    )
    subscription = Subscription.objects.get()
    page = support_admin.get(f"/admin/conferences/subscription/{subscription.pk}/change/")
    kept = support_admin.post(
        f"/admin/conferences/subscription/{subscription.pk}/change/",
        {**fields, "email": subscription.email, "kinds": "state,hold"},
    )

    assert "Apprise refuses this channel URL" in refused.content.decode()
    assert added.status_code == 302 and kept.status_code == 302
    assert "token-xyz" not in page.content.decode()
    assert reload(subscription).kinds == ["state", "hold"]
    assert crypto.decrypt(subscription.channel_encrypted) == f"json://{receiver.host}/token-xyz"


def test_rotate_keys_re_encrypts_channel_urls_and_webhook_secrets(settings, receiver):
    old, new = "old-key-for-the-channel-test-0123456789", "new-key-for-the-channel-test-987654"
    settings.CONFWATCH_ENCRYPTION_KEY = [old]
    url = f"webhook://{receiver.host}/hook"
    subscription = subscribe(url, secret=SECRET)
    settings.CONFWATCH_ENCRYPTION_KEY = [new, old]
    out = StringIO()

    call_command("rotate_keys", stdout=out)
    settings.CONFWATCH_ENCRYPTION_KEY = [new]

    assert "Re-encrypted 1 channel subscriptions" in out.getvalue()
    reload(subscription)
    assert crypto.decrypt(subscription.channel_encrypted) == url
    assert crypto.decrypt(subscription.webhook_secret_encrypted) == SECRET


def test_a_failing_channel_leaves_its_secrets_out_of_the_logs_and_the_error(
    board_call, sim_client, receiver, caplog
):
    subscribe(f"json://user:hunter2-pw@{receiver.host}/token-xyz")
    receiver.answer(500)

    start_call(sim_client, board_call)
    fanout.run_pass()

    delivery = Delivery.objects.get()
    assert "500" in delivery.last_error
    for text in (caplog.text, delivery.last_error):
        assert "hunter2-pw" not in text and "token-xyz" not in text


def allow_private(**env):
    """CONFWATCH_ALLOW_PRIVATE_WEBHOOKS as a fresh process's settings make it."""
    environment = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    environment.update(env, DJANGO_SETTINGS_MODULE="dashboard.settings")
    code = "import django; django.setup(); from django.conf import settings as s; "
    code += "print(s.CONFWATCH_ALLOW_PRIVATE_WEBHOOKS)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_private_hosts_are_refused_in_production_unless_allowed_and_allowed_in_development():
    production = {"CONFWATCH_ENV": "production", "ALLOWED_HOSTS": "example.com"}
    production["SECRET_KEY"] = STRONG_KEY

    assert allow_private(**production) == "False"
    assert allow_private(**production, CONFWATCH_ALLOW_PRIVATE_WEBHOOKS="true") == "True"
    assert allow_private(CONFWATCH_ENV="development") == "True"


def test_a_channel_timeout_longer_than_half_the_claim_is_refused_at_startup():
    result = settings_load(CONFWATCH_SEND_CLAIM_SECONDS="30", CONFWATCH_CHANNEL_TIMEOUT="20")

    assert result.returncode != 0
    assert "must be at least twice CONFWATCH_CHANNEL_TIMEOUT (20)" in result.stderr
    assert settings_load(CONFWATCH_SEND_CLAIM_SECONDS="2", EMAIL_TIMEOUT="1").returncode == 0


def test_a_form_channel_gets_the_message_as_a_form_and_a_redirect_is_not_followed(
    db, receiver, other_receiver
):
    form = subscribe(f"form://{receiver.host}/form")
    moved = subscribe(f"json://{other_receiver.host}/moved")
    other_receiver.answer(302)

    channels.queue_test_message(form)
    channels.queue_test_message(moved)
    sender.send_pending()

    [message] = receiver.wait_for(1)
    assert message.headers["content-type"] == "application/x-www-form-urlencoded"
    fields = parse_qs(message.body.decode())
    assert fields["title"] == [f"Test message: alerts reach {form.email}"]
    assert "This is a test message from confwatch" in fields["message"][0]
    assert Delivery.objects.get(subscription=form).status == "sent"
    refused = Delivery.objects.get(subscription=moved)
    assert refused.status == "failed" and "302" in refused.last_error
    assert len(other_receiver.requests) == 1


def test_a_webhook_that_redirects_fails_without_the_redirect_being_followed(db, receiver):
    webhook = subscribe(f"webhook://{receiver.host}/moved", secret=SECRET)
    receiver.answer(301)

    channels.queue_test_message(webhook)
    summary = sender.send_pending()

    delivery = Delivery.objects.get()
    assert (summary.failed, delivery.status) == (1, "failed")
    assert "redirects are not followed" in delivery.last_error
    assert [request.path for request in receiver.requests] == ["/moved"]


def test_conferences_changing_together_reach_a_channel_and_a_webhook_as_one_message_each(
    account, sim_client, receiver, other_receiver
):
    conferences = []
    for index in range(3):
        conference_id = sim_client.create_conference(from_number="+15555550100")
        conferences.append(make_conference(account, conference_id, label=f"Call {index}"))
    poll()  # first observed: created
    fanout.run_pass()
    subscribe(f"json://{receiver.host}/alerts")
    subscribe(f"webhook://{other_receiver.host}/confwatch", secret=SECRET)
    for conference in conferences:
        sim_client.add_member(conference.conference_id, call_id=f"c-{conference.pk}")
    poll()

    summary = fanout.run_pass()
    fanout.run_pass()

    assert (summary.sent, summary.failed, summary.retrying) == (6, 0, 0)  # deliveries
    [message] = receiver.wait_for(1)
    [hook] = other_receiver.wait_for(1)
    sent = json.loads(message.body)
    assert sent["title"] == "3 alerts about 3 conferences"
    for conference in conferences:
        assert f"Call {conference.label[-1]}" in sent["message"]
        assert f"/conferences/{conference.pk}/" in sent["message"]
    assert readme_verify()(SECRET.encode(), hook.body, hook.headers["x-confwatch-signature"])
    body = json.loads(hook.body)
    assert (body["event"], body["conference"]) == ("group", None)
    assert sorted(change["conference"] for change in body["changes"]) == sorted(
        conference.conference_id for conference in conferences
    )
    assert len(receiver.requests) == 1 and len(other_receiver.requests) == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_webhook_host_that_does_not_resolve_is_refused_even_where_private_hosts_are_allowed(
    db, settings
):
    settings.CONFWATCH_ALLOW_PRIVATE_WEBHOOKS = True

    with pytest.raises(ValidationError, match="cannot be resolved"):
        channels.clean_channel("webhook://confwatch-no-such-host/hook", secret=SECRET)
    with pytest.raises(ValidationError, match="cannot be resolved"):
        channels.clean_channel("webhook://NaN/hook", secret=SECRET)
    label = channels.clean_channel("webhook://localhost:9/hook", secret=SECRET).label
    assert label.startswith("webhook://localhost:9/… #")
