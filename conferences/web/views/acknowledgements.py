"""Acknowledging: an alert email's link, and the conference page's form."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from conferences.alerting import acknowledgements, emails
from conferences.models import (
    Conference,
)
from conferences.registry.roles import requires
from conferences.web.forms import (
    AcknowledgeForm,
)
from conferences.web.views.conference import refuse_form


@never_cache
@login_not_required
@requires(GET="token_links", POST="token_links")
def acknowledge_alert(request, token):
    """The "Acknowledge" link of an alert email, no sign-in needed: GET asks (a mail
    scanner that follows links acknowledges nothing), POST acknowledges, with an optional
    reason and expiry. The link acts once: used again, it shows what was acknowledged, by
    whom and when. An expired link is a 410, a forged or damaged one a plain 404; neither
    changes anything."""
    link = acknowledgements.read_link(token)
    if link is None:
        return render(request, "conferences/acknowledge_invalid.html", status=404)
    delivery = link.delivery
    if link.expired:
        context = {"delivery": delivery, "days": acknowledgements.link_days()}
        return render(request, "conferences/acknowledge_expired.html", context, status=410)
    form = AcknowledgeForm(request.POST if request.method == "POST" else None)
    done = acknowledgements.made_by_link(delivery)
    used_before = done is not None
    if not used_before and request.method == "POST" and form.is_valid():
        signed_in = request.user.is_authenticated
        done, made = acknowledgements.acknowledge_alert(
            delivery=delivery,
            by=request.user.get_username() if signed_in else delivery.email,
            user=request.user if signed_in else None,
            reason=form.cleaned_data["reason"],
            expires_in=form.cleaned_data["expires"],
        )
        used_before = not made
    context = {
        "delivery": delivery,
        "conference": delivery.conference,
        "form": form,
        "done": done,
        "used_before": used_before,
        "in_force": done is not None and acknowledgements.in_force(done, timezone.now()),
        # Times in the subscriber's zone, as in the email the link came in.
        "zone": emails.zone_for(delivery.subscription),
    }
    status = 400 if done is None and form.errors else 200
    return render(request, "conferences/acknowledge.html", context, status=status)


@requires(POST="conferences.acknowledge")
def acknowledge_conference(request, pk):
    """The conference page's "Acknowledge" form (templates/conferences/_acknowledge.html)."""
    conference = get_object_or_404(Conference, pk=pk)
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        return refuse_form(request, conference, acknowledge_form=form)
    acknowledgements.acknowledge(
        conference=conference,
        by=request.user.get_username(),
        user=request.user,
        reason=form.cleaned_data["reason"],
        expires_in=form.cleaned_data["expires"],
    )
    messages.success(request, f"Acknowledged {conference}: nothing more until its state changes.")
    return redirect("conferences:detail", pk=conference.pk)
