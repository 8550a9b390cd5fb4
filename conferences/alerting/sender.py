"""Alerts, step two: due deliveries become emails or channel messages (channels.py); the
fan-out, fanout.py, made them.

- `send_pending` claims due deliveries with a claim token and a lease (a conditional
  UPDATE on rows locked with SKIP LOCKED), sends each outside any transaction, and
  records the result only while it still holds the claim. Before each send it renews
  its lease on that delivery (CONFWATCH_SEND_CLAIM_SECONDS from then, which settings keep
  above two EMAIL_TIMEOUTs), only while the claim is still its own: a delivery whose
  lease lapsed while earlier ones were sent, and that another sender took, is left to
  that sender, so a delivery never goes out twice from two live senders.

The guarantee is at least once: a sender that dies after the SMTP server took a message
but before recording it leaves a claim that lapses after CONFWATCH_SEND_CLAIM_SECONDS,
and the message is sent again with the same Message-ID (derived from the delivery), so
the rare duplicate is recognisable. Nothing claimed is ever lost.

Change deliveries of one target claimed together go out as one message (grouping.py):
each is renewed before the send, only those still held are sent, and the result is
recorded on each.

A delivery's `send_after` is when it became due (at once, after the coalescing window,
at the end of the hour of the cap or of quiet hours) and stays so; a delivery the mail
server refused for now waits for its next try in `claimed_until`, without a claim token.
/health/ counts a pending delivery as unsent from its `send_after`, and one due later as
held until then.
"""

import logging
import smtplib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import F, JSONField, Q, Value
from django.db.models.expressions import CombinedExpression
from django.utils import timezone

from conferences.alerting import channels, grouping
from conferences.models import (
    Delivery,
    DeliveryStatus,
)
from conferences.ops import metrics

logger = logging.getLogger(__name__)

# Most deliveries one send pass sends; the next pass (a few seconds later) sends the rest.
SEND_BATCH = 100
# A delivery the mail server or channel keeps refusing for now is given up after this many
# tries (the waits between them double from 30 s up to CONFWATCH_SEND_MAX_BACKOFF).
MAX_ATTEMPTS = 12


@dataclass
class PassSummary:
    events: int = 0
    deliveries: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0

    def line(self):
        line = (
            f"{self.events} events, {self.deliveries} deliveries, "
            f"{self.sent} sent, {self.failed} failed"
        )
        if self.retrying:
            line += f", {self.retrying} to retry"
        return line


# --------------------------------------------------------------------------- sending


def send_pending(*, now=None, limit=SEND_BATCH):
    """Claim due deliveries, send them, record each result."""
    token = uuid.uuid4()
    claimed = claim_deliveries(token=token, now=now or timezone.now(), limit=limit)
    summary = PassSummary()
    if not claimed:
        return summary
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    try:
        for batch in grouping.batches(claimed):
            batch = still_mine(batch, token=token)
            if not batch:
                continue
            outcome = send_one(connection, batch[0], together=batch)
            done_at = timezone.now()
            record_results(batch, token=token, outcome=outcome, now=done_at)
            for delivery in batch:
                metrics.delivery_tried(delivery, outcome)
                if outcome.sent:
                    summary.sent += 1
                elif outcome.permanent:
                    summary.failed += 1
                else:
                    summary.retrying += 1
    finally:
        try:
            connection.close()
        except (smtplib.SMTPException, OSError):
            pass
    return summary


def claim_deliveries(*, token, now, limit):
    """Take up to `limit` due deliveries: pending, due, not held by a live sender and not
    waiting for their next try."""
    lease = now + send_lease()
    with transaction.atomic():
        due = list(
            Delivery.objects.filter(status=DeliveryStatus.PENDING, send_after__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .order_by("send_after", "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if not due:
            return []
        Delivery.objects.filter(pk__in=due, status=DeliveryStatus.PENDING).update(
            claim_token=token, claimed_until=lease
        )
    claimed = Delivery.objects.filter(pk__in=due, claim_token=token)
    return list(claimed.select_related("subscription", "conference").order_by("send_after", "pk"))


def send_lease():
    """How long a claim holds: long enough for one send (settings keep it above two
    EMAIL_TIMEOUTs: opening the connection and the message's slowest answer)."""
    return timedelta(seconds=settings.CONFWATCH_SEND_CLAIM_SECONDS)


def still_mine(deliveries, *, token):
    """The deliveries (sent as one message) whose lease this sender renewed for the send;
    one another sender took after the lease lapsed is left out: this one must not send
    it."""
    renewed = renew_leases(deliveries, token=token)
    for delivery in deliveries:
        if delivery.pk not in renewed:
            logger.info("delivery %s: its lease lapsed and another sender has it", delivery.pk)
    return [delivery for delivery in deliveries if delivery.pk in renewed]


def renew_leases(deliveries, *, token):
    """Extend the lease on the deliveries still claimed by this sender (one conditional
    UPDATE), and return the primary keys renewed: those now holding this sender's token
    and the new lease, which no other sender can take before it lapses."""
    pks = [delivery.pk for delivery in deliveries]
    until = timezone.now() + send_lease()
    mine = Delivery.objects.filter(pk__in=pks, claim_token=token, status=DeliveryStatus.PENDING)
    mine.update(claimed_until=until)
    return set(mine.values_list("pk", flat=True))


@dataclass
class SendOutcome:
    sent: bool = False
    permanent: bool = False
    error: str = ""
    subject: str = ""


def send_one(connection, delivery, *, together=None):
    """Send the delivery, or the deliveries `together` (grouping.batches) as one message:
    to a channel or webhook (channels.py), or as an email on the connection."""
    if delivery.subscription_id is None and delivery.kind != Delivery.Kind.DIGEST:
        return SendOutcome(permanent=True, error="unsubscribed before it was sent")
    if channels.is_channel(delivery.email):
        try:
            return SendOutcome(sent=True, subject=channels.send(delivery, together=together))
        except channels.SendFailed as error:
            return SendOutcome(permanent=error.permanent, error=str(error), subject=error.subject)
    try:
        message = grouping.build_message(together or [delivery])
    except Exception as error:  # a rendering bug must not stop the other deliveries
        logger.exception("could not build delivery %s", delivery.pk)
        return SendOutcome(permanent=True, error=f"could not build the email: {error}")
    message.connection = connection
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as error:
        answers = list(error.recipients.values())
        text = "; ".join(f"{code} {as_text(reply)}" for code, reply in answers)
        permanent = min(code for code, _ in answers) >= 500
        return SendOutcome(permanent=permanent, error=text, subject=message.subject)
    except smtplib.SMTPResponseException as error:
        close_quietly(connection)
        text = f"{error.smtp_code} {as_text(error.smtp_error)}"
        return SendOutcome(permanent=error.smtp_code >= 500, error=text, subject=message.subject)
    except (smtplib.SMTPException, OSError) as error:
        close_quietly(connection)
        return SendOutcome(error=f"{type(error).__name__}: {error}", subject=message.subject)
    except ValueError as error:  # a malformed address, say
        return SendOutcome(permanent=True, error=str(error), subject=message.subject)
    return SendOutcome(sent=True, subject=message.subject)


def as_text(reply):
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def close_quietly(connection):
    try:
        connection.close()
    except (smtplib.SMTPException, OSError):
        pass


def record_results(deliveries, *, token, outcome, now):
    """Write what happened to deliveries sent as one message, only while this sender
    still holds their claim: one UPDATE when sent, and with one `now` (the hourly cap
    counts them once)."""
    if outcome.sent:
        mine = Delivery.objects.filter(pk__in=[d.pk for d in deliveries], claim_token=token)
        mine.update(
            status=DeliveryStatus.SENT,
            sent_at=now,
            last_error="",
            attempts=F("attempts") + 1,
            claim_token=None,
            claimed_until=None,
            subject=outcome.subject[:300],
            attempt_log=logged_attempt(at=now, result="sent", error=outcome.error),
        )
        return
    for delivery in deliveries:
        record_failure(delivery, token=token, outcome=outcome, now=now)


def record_failure(delivery, *, token, outcome, now):
    """A try that did not send: retried later, or failed for good."""
    mine = Delivery.objects.filter(pk=delivery.pk, claim_token=token)
    values = {"claim_token": None, "claimed_until": None, "subject": outcome.subject[:300]}
    attempts = delivery.attempts + 1
    result = "failed" if outcome.permanent or attempts >= MAX_ATTEMPTS else "retry"
    values["attempt_log"] = logged_attempt(at=now, result=result, error=outcome.error)
    if result == "failed":
        error = (
            outcome.error
            if outcome.permanent
            else f"gave up after {attempts} tries: {outcome.error}"
        )
        mine.update(
            status=DeliveryStatus.FAILED, last_error=error[:2000], attempts=attempts, **values
        )
        logger.warning("delivery %s to %s failed: %s", delivery.pk, delivery.email, error)
        return
    wait = min(30 * 2 ** (attempts - 1), settings.CONFWATCH_SEND_MAX_BACKOFF)
    # send_after keeps when it became due; the next try waits in claimed_until.
    mine.update(
        last_error=outcome.error[:2000],
        attempts=attempts,
        **(values | {"claimed_until": now + timedelta(seconds=wait)}),
    )
    logger.info(
        "delivery %s to %s will be retried in %d s: %s",
        delivery.pk,
        delivery.email,
        wait,
        outcome.error,
    )


def logged_attempt(*, at, result, error):
    """The delivery's attempt log with this try appended (one UPDATE, JSONB `||`)."""
    entry = [{"at": at.isoformat(), "result": result, "error": error[:300]}]
    return CombinedExpression(F("attempt_log"), "||", Value(entry, output_field=JSONField()))
