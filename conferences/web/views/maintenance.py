"""The Maintenance page: current and coming windows; support admins add and end them."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from conferences.alerting import maintenance
from conferences.models import MaintenanceWindow
from conferences.registry import roles
from conferences.registry.roles import requires
from conferences.registry.tracking import ID_SEPARATORS

LOCAL_HELP = "YYYY-MM-DD HH:MM"


class MaintenanceForm(forms.Form):
    """What `manage.py maintenance add` takes; maintenance.create_window checks it."""

    SCOPES = [("account", "Account"), ("tag", "Tag"), ("conferences", "Conferences")]

    scope = forms.ChoiceField(choices=SCOPES)
    covers = forms.CharField(
        max_length=2000, help_text="The account's name, the tag, or conference ids."
    )
    starts = forms.CharField(label="From", max_length=40, help_text=LOCAL_HELP)
    until = forms.CharField(label="Until", max_length=40, help_text=LOCAL_HELP)
    weekly = forms.BooleanField(required=False, help_text="Every week at the same local times.")
    time_zone = forms.CharField(
        max_length=60, required=False, help_text="e.g. Europe/Berlin; blank: the site's."
    )
    reason = forms.CharField(max_length=maintenance.MAX_REASON, required=False)


@requires(GET="pages.read", POST="maintenance.manage")
def maintenance_list(request):
    """Current and coming windows; a POST adds one."""
    form = MaintenanceForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            covers = data["covers"].strip()
            try:
                window = maintenance.create_window(
                    account_name=covers if data["scope"] == "account" else None,
                    tag=covers if data["scope"] == "tag" else "",
                    conference_ids=ID_SEPARATORS.split(covers)
                    if data["scope"] == "conferences"
                    else (),
                    starts=data["starts"],
                    until=data["until"],
                    weekly=data["weekly"],
                    time_zone=data["time_zone"],
                    reason=data["reason"],
                    by=request.user.get_username(),
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, f"Added maintenance {window.pk}.")
                return redirect("conferences:maintenance")
        status = 400
    now = timezone.now()
    windows = [
        {
            "window": occurrence.window,
            "starts_at": occurrence.starts_at,
            "ends_at": occurrence.ends_at,
            "current": occurrence.current(now),
        }
        for occurrence in maintenance.open_windows(now)
    ]
    context = {
        "windows": windows,
        "form": form,
        "can_manage": roles.allows(request.user, "maintenance.manage"),
    }
    return render(request, "conferences/maintenance.html", context, status=status)


@requires(POST="maintenance.manage")
def maintenance_end(request, pk):
    window = get_object_or_404(MaintenanceWindow, pk=pk)
    if maintenance.end_window(window):
        messages.success(request, f"Ended maintenance {pk}; its summaries go out now.")
    else:
        messages.info(request, f"Maintenance {pk} had ended already.")
    return redirect("conferences:maintenance")
