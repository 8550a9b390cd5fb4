"""Which conferences a call was in."""

from django.shortcuts import render

from conferences.recording import members
from conferences.registry.roles import requires


@requires(GET="pages.read")
def call_search(request):
    """Which conferences a call was in, when and for how long."""
    call_id = request.GET.get("call_id", "").strip()[:200]
    rows = members.calls_by_call_id(call_id) if call_id else []
    return render(request, "conferences/calls.html", {"call_id": call_id, "rows": rows})
