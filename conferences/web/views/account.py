"""The signed-in user's preferences (their time zone for the pages)."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone

from conferences.alerting import subscriptions
from conferences.models import (
    UserPreference,
)
from conferences.registry.roles import requires
from conferences.web.forms import (
    PreferenceForm,
)
from conferences.web.middleware import TIME_ZONE_KEY


@requires(GET="account.own", POST="account.own")
def preferences(request):
    """The signed-in user's time zone for the pages."""
    preference = UserPreference.objects.filter(user=request.user).first()
    preference = preference or UserPreference(user=request.user)  # saved on POST only
    form = PreferenceForm(request.POST or None, instance=preference)
    if request.method == "POST" and form.is_valid():
        form.save()
        request.session[TIME_ZONE_KEY] = preference.time_zone
        zone = preference.time_zone or f"the site's ({settings.TIME_ZONE})"
        messages.success(request, f"Times are now shown in {zone}.")
        return redirect("conferences:preferences")
    context = {
        "form": form,
        "zone_names": subscriptions.zone_names(),
        "site_time_zone": settings.TIME_ZONE,
        "now": timezone.now(),
    }
    return render(request, "conferences/preferences.html", context)
