"""The alerts page (the user's own subscriptions) and the unsubscribe link of every email."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from conferences.alerting import channels, schedules, subscriptions
from conferences.alerting.unsubscribe import read_link as unsubscribe_link
from conferences.models import (
    Delivery,
    Subscription,
)
from conferences.registry import roles
from conferences.registry.roles import requires
from conferences.web.forms import (
    SubscriptionForm,
)
from conferences.web.views.common import MAX_DELIVERIES_SHOWN


@requires(GET="subscriptions.own", POST="subscriptions.own")
def alerts(request):
    """The signed-in user's own subscriptions, a form to add one, their recent emails.
    Only those who may subscribe others (roles) subscribe another address than their own."""
    form = SubscriptionForm(request.POST or None, initial={"email": request.user.email})
    if not roles.allows(request.user, "subscriptions.others"):
        form.fields["email"].widget.attrs["readonly"] = True
        form.fields["email"].help_text = "Your own address: an admin subscribes other ones."
        if request.method == "POST" and not roles.is_own_address(
            request.user, request.POST.get("email")
        ):
            raise PermissionDenied("Only an admin subscribes another address than yours.")
    new_secret = ""
    if request.method == "POST" and form.is_valid():
        try:
            subscription, created = subscriptions.subscribe(
                user=request.user, **form.subscribe_arguments()
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if created and subscription.new_secret:
                # Shown once, in this answer only (not in a message, which is stored).
                messages.success(request, f"Subscribed {subscriptions.describe(subscription)}.")
                new_secret = subscription.new_secret
                form = SubscriptionForm(initial={"email": request.user.email})
            elif created:
                messages.success(request, f"Subscribed {subscriptions.describe(subscription)}.")
            else:
                messages.info(
                    request, f"{subscription.email} already gets exactly these alerts; unchanged."
                )
            if not new_secret:
                return redirect("conferences:alerts")
    own = (
        Subscription.objects.filter(user=request.user)
        .select_related("account")
        .prefetch_related("conferences")
        .order_by("-created_at", "-id")
    )
    rows = [
        {
            "subscription": subscription,
            "scope": subscriptions.scope_text(subscription),
            "thresholds": subscriptions.threshold_text(subscription),
            "rules": subscriptions.rule_text(subscription),
            "quiet_hours": schedules.format_quiet_hours(
                subscription.quiet_start, subscription.quiet_end
            ),
        }
        for subscription in own
    ]
    recipients = Q(subscription__user=request.user)
    if request.user.email:
        recipients |= Q(email__iexact=request.user.email)
    deliveries = (
        Delivery.objects.filter(recipients)
        .select_related("conference")
        .order_by("-created_at", "-id")[:MAX_DELIVERIES_SHOWN]
    )
    context = {
        "form": form,
        "rows": rows,
        "deliveries": list(deliveries),
        "zone_names": subscriptions.zone_names(),
        "site_time_zone": settings.TIME_ZONE,
        "new_secret": new_secret,
    }
    response = render(request, "conferences/alerts.html", context)
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


@requires(POST="subscriptions.own")
def alert_delete(request, pk):
    """Delete one of the signed-in user's subscriptions (anyone else's is a 404)."""
    subscription = get_object_or_404(Subscription, pk=pk, user=request.user)
    description = subscriptions.describe(subscription)
    subscriptions.unsubscribe(subscription)
    messages.success(request, f"Deleted {description}.")
    return redirect("conferences:alerts")


@requires(POST="subscriptions.own")
def alert_test(request, pk):
    """Queue a test message to one of the signed-in user's subscriptions (anyone else's
    is a 404): the next send pass sends it, and the recent alerts below show how it went."""
    subscription = get_object_or_404(Subscription, pk=pk, user=request.user)
    channels.queue_test_message(subscription)
    messages.success(
        request,
        f"A test message to {subscription.email} is on its way: see your recent alerts below.",
    )
    return redirect("conferences:alerts")


@csrf_exempt  # The signed token authorises it; mail clients' one-click POST has no CSRF.
@never_cache
@login_not_required
@requires(GET="token_links", POST="token_links")
def unsubscribe(request, token):
    """The link in every alert email. GET asks; POST (a click, or a mail client's RFC 8058
    one-click "List-Unsubscribe=One-Click") deletes the subscription the token names.
    Opened again, it says "already unsubscribed"; a forged or damaged link is a 404."""
    link = unsubscribe_link(token)
    if link is None:
        return render(request, "conferences/unsubscribe_invalid.html", status=404)
    subscription = link.subscription
    if subscription is None:
        return render(request, "conferences/unsubscribe_gone.html", {"email": link.email})
    context = {
        "subscription": subscription,
        "scope": subscriptions.scope_text(subscription),
        "done": False,
    }
    if request.method == "POST":
        subscriptions.unsubscribe(subscription)
        context["done"] = True
    return render(request, "conferences/unsubscribe.html", context)
