"""The overview (the list of tracked conferences) and its row actions: pause, resume, untrack."""

from django.contrib import messages
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from conferences.alerting import maintenance
from conferences.models import (
    Account,
    Conference,
    stale_after,
)
from conferences.registry import roles, tracking
from conferences.registry.roles import requires
from conferences.web.forms import (
    SORT_COLUMNS,
    FilterForm,
)
from conferences.web.selectors import overview
from conferences.web.views.common import (
    back_to_list,
    htmx_partial,
    query_with,
    render_page,
)

ACCOUNT_REFRESH = 10  # seconds between refreshes of the overview's account strip


def sort_links(params, current):
    """Each sortable column's link: ascending first, descending when already ascending."""
    links = {}
    for column in SORT_COLUMNS:
        next_sort = f"-{column}" if current == column else column
        if current == column:
            direction = "ascending"
        elif current == f"-{column}":
            direction = "descending"
        else:
            direction = ""
        links[column] = {
            "query": query_with(params, sort=next_sort, page=None),
            "direction": direction,
        }
    return links


@requires(GET="pages.read")
def conference_list(request):
    now = timezone.now()
    if request.htmx and request.GET.get("part") == "accounts":
        return htmx_partial(
            request, "conferences/list.html#account-strip", account_strip_context, version=None
        )
    form = FilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else None
    page = (data or {}).get("page") or 1
    sort = (data or {}).get("sort") or ""
    summary = overview.summarize(data, now=now)
    pages = max(1, -(-summary.rows // overview.PAGE_SIZE))
    page = min(page, pages)  # past the end (rows went away): the last page
    # One read of the maintenance windows: for the version (a window beginning or ending
    # changes the badges) and for the badges themselves.
    covering = maintenance.Covering(now=now)
    version = summary.version(page, sort, timezone.localdate(), covering.key())

    def page_context():
        return overview_context(
            request,
            form=form,
            data=data,
            summary=summary,
            page=page,
            pages=pages,
            sort=sort,
            version=version,
            now=now,
            covering=covering,
        )

    if request.htmx:
        # The counts sit above the filters, outside the refreshed table: they come along
        # as an out-of-band swap.
        return htmx_partial(
            request,
            "conferences/list.html#overview-live",
            lambda: {**page_context(), "oob_counts": True},
            version=version,
        )
    return render_page(
        request, "conferences/list.html", {**page_context(), **account_strip_context()}
    )


def account_strip_context():
    """What the account strip reads, on the page and in its own refresh."""
    return {"accounts": overview.account_strip(), "account_refresh_seconds": ACCOUNT_REFRESH}


def overview_context(request, *, form, data, summary, page, pages, sort, version, now, covering):
    """The overview's context: the page of rows and everything around them."""
    rows = overview.page_of_rows(data, now=now, page=page) if data is not None else []
    add_row_urls(rows)
    covering.mark(rows)
    first = (page - 1) * overview.PAGE_SIZE + 1
    can_pause = roles.allows(request.user, "conferences.pause")
    can_untrack = roles.allows(request.user, "conferences.untrack")
    context = {
        "form": form,
        "conferences": rows,
        "summary": summary,
        "counts": overview.count_links(summary),
        "version": version,
        "query": query_with(request.GET),
        "filtered": bool(query_with(request.GET, page=None, sort=None)),
        "sort": sort,
        "sort_links": sort_links(request.GET, sort),
        "page": page,
        "pages": pages,
        "first_shown": first if rows else 0,
        "last_shown": first + len(rows) - 1,
        "previous_query": query_with(request.GET, page=page - 1 if page > 2 else None)
        if page > 1
        else None,
        "next_query": query_with(request.GET, page=page + 1) if page < pages else None,
        "show_account": summary.accounts > 1,
        "can_pause": can_pause,
        "can_untrack": can_untrack,
        "row_options": {
            "show_account": summary.accounts > 1,
            "can_pause": can_pause,
            "can_untrack": can_untrack,
            "stale_after": int(stale_after().total_seconds()),
        },
        "troubled_accounts": Account.objects.exclude(problem="").order_by("name"),
    }
    return context


PK_MARK = 987654321


def add_row_urls(rows):
    """Each row's links and action addresses, reversed once per page, not per row."""
    patterns = {
        name: reverse(f"conferences:{name}", args=[PK_MARK]).replace(str(PK_MARK), "{}")
        for name in ("detail", "pause", "resume", "untrack")
    }
    for row in rows:
        for name, pattern in patterns.items():
            setattr(row, f"{name}_url", pattern.format(row.pk))


@requires(POST="conferences.pause")
def conference_pause(request, pk):
    conference = get_object_or_404(Conference, pk=pk)
    if tracking.pause(Conference.objects.filter(pk=pk, paused=False)):
        LogEntry.objects.log_actions(request.user.pk, [conference], CHANGE, "Paused tracking.")
        messages.success(request, f"Paused {conference}: it is no longer polled.")
    else:
        messages.info(request, f"{conference} was paused already.")
    return back_to_list(request)


@requires(POST="conferences.pause")
def conference_resume(request, pk):
    conference = get_object_or_404(Conference, pk=pk)
    if tracking.resume(Conference.objects.filter(pk=pk, paused=True)):
        LogEntry.objects.log_actions(request.user.pk, [conference], CHANGE, "Resumed tracking.")
        messages.success(request, f"Resumed {conference}: it is polled again.")
    else:
        messages.info(request, f"{conference} was not paused.")
    return back_to_list(request)


@requires(POST="conferences.untrack")
def conference_untrack(request, pk):
    conference = get_object_or_404(Conference, pk=pk)
    LogEntry.objects.log_actions(request.user.pk, [conference], DELETION, "Untracked.")
    conference.delete()
    messages.success(
        request, f"Untracked {conference} ({conference.conference_id}) and deleted its history."
    )
    return back_to_list(request)
