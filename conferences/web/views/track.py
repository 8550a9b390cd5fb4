"""The form that tracks conferences by id."""

from django.contrib import messages
from django.shortcuts import redirect, render

from conferences.registry import tracking
from conferences.registry.roles import requires
from conferences.web.forms import (
    TrackForm,
)


@requires(GET="conferences.track", POST="conferences.track")
def track(request):
    form = TrackForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        added, existing = tracking.track_conferences(
            account=form.cleaned_data["account"],
            conference_ids=form.cleaned_data["conference_ids"],
            label=form.cleaned_data["label"],
            tags=form.cleaned_data["tags"],
        )
        if added:
            messages.success(request, f"Now tracking {', '.join(added)}.")
        if existing:
            messages.info(request, f"Already tracked: {', '.join(existing)}.")
        return redirect("conferences:list")
    return render(request, "conferences/track.html", {"form": form})
