"""Tracked conferences: the list support staff search and filter, their page, the
actions on them and the CSV import."""

import csv
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.db.models import F, Func, Q
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext
from kombu.exceptions import OperationalError

from conferences import redact, tasks
from conferences.admin.common import (
    CappedCountPaginator,
    DeletesItsRecords,
    QuickActionCheckbox,
    StateFilter,
    changelist_url,
    conference_search,
    search_words,
)
from conferences.admin.records import (
    DeliveryInline,
    EventInline,
    HistoryInline,
    PollErrorInline,
)
from conferences.models import (
    Account,
    Conference,
    Delivery,
    Event,
    HistoryEntry,
    PollError,
)
from conferences.polling import support
from conferences.registry import importing, roles, tracking
from conferences.templatetags.confwatch_time import local_time, relative_time
from conferences.text import iso, parse_time
from conferences.web.selectors import exports

# Session key: poll-now outcomes logged after this time are shown to the user.
POLL_NOW_SINCE = "confwatch_poll_now_since"
MAX_OUTCOMES_SHOWN = 10


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        # Every tag in use: SELECT DISTINCT unnest(tags) (5,000 conferences: a few ms).
        tags = (
            Conference.objects.annotate(tag=Func(F("tags"), function="unnest"))
            .values_list("tag", flat=True)
            .distinct()
            .order_by("tag")
        )
        return [(tag, tag) for tag in tags]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(tags__contains=[self.value()])
        return queryset


class PollHealthFilter(admin.ChoicesFieldListFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "poll health"


class ConferenceForm(forms.ModelForm):
    """Ids are checked where they enter, as the track form and commands do."""

    class Meta:
        model = Conference
        fields = ["account", "conference_id", "label", "tags", "paused"]

    def clean_conference_id(self):
        conference_id = self.cleaned_data["conference_id"].strip()
        tracking.validate_conference_id(conference_id)
        return conference_id

    def clean_tags(self):
        return sorted({tag.strip().lower() for tag in self.cleaned_data["tags"] if tag.strip()})


class ImportForm(forms.Form):
    account = forms.ModelChoiceField(queryset=Account.objects.order_by("name"))
    file = forms.FileField(required=False, label="CSV file")
    text = forms.CharField(
        required=False,
        label="or paste the CSV",
        widget=forms.Textarea(
            attrs={"rows": 8, "cols": 80, "placeholder": "conf-abc123,Board call,acme;vip"}
        ),
    )

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("file")) == bool(cleaned.get("text", "").strip()):
            raise forms.ValidationError("Upload a file or paste the CSV (one of the two).")
        return cleaned

    def csv_data(self):
        upload = self.cleaned_data.get("file")
        if upload:
            return upload.read(importing.MAX_BYTES + 1)
        return self.cleaned_data["text"]


STATUS_FIELDS = ["state", "active_members", "hold", "mute", "from_number", "created_time"]
STATUS_FIELDS += ["completed_time", "last_changed_at"]
POLL_FIELDS = ["poll_status", "poll_error", "last_polled_at", "next_poll_at"]
POLL_FIELDS += ["consecutive_failures", "tracked_at"]
EXPORT_FIELDS = ["conference_id", "label", "tags", "account", *importing.EXPORT_COLUMNS[1:]]


@admin.register(Conference)
class ConferenceAdmin(QuickActionCheckbox, DeletesItsRecords, admin.ModelAdmin):
    form = ConferenceForm
    list_display = ["conference_id", "label_and_link", "account", "state", "members"]
    list_display += ["hold_shown", "mute_shown", "last_change", "poll_health"]
    list_display_links = ["conference_id"]
    list_filter = [
        StateFilter,
        "account",
        TagFilter,
        "paused",
        ("poll_status", PollHealthFilter),
        "hold",
        "mute",
        "last_changed_at",
        "created_time",
    ]
    search_fields = ["conference_id", "label", "from_number"]
    search_help_text = "Id, label, tag or from number; every word must match."
    date_hierarchy = "created_time"
    ordering = [F("last_changed_at").desc(nulls_last=True), "conference_id"]
    list_select_related = ["account"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    inlines = [HistoryInline, PollErrorInline, EventInline, DeliveryInline]
    actions = ["pause_tracking", "resume_tracking", "poll_now", "export_csv"]
    # The actions' permissions, from the roles table (conferences/registry/roles.py).
    has_pause_permission = roles.admin_permission("conferences.pause")
    has_read_permission = roles.admin_permission("pages.read")

    def view_on_site(self, conference):
        return reverse("conferences:detail", args=[conference.pk])

    def get_fieldsets(self, request, obj=None):
        tracking_fields = ["account", "conference_id", "label", "tags", "paused"]
        if obj is None:
            return [(None, {"fields": tracking_fields})]
        return [
            (None, {"fields": tracking_fields + ["records"]}),
            ("Last observed status", {"fields": STATUS_FIELDS}),
            ("Polling", {"fields": POLL_FIELDS}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["account", "conference_id", "records", *STATUS_FIELDS, *POLL_FIELDS]

    def get_search_results(self, request, queryset, search_term):
        """Every word narrows what the filters chose: id, label or from number contain
        it, or it is one of the tags."""
        for word in search_words(search_term):
            queryset = queryset.filter(
                conference_search(word)
                | Q(from_number__icontains=word)
                | Q(tags__contains=[word.lower()])
            )
        return queryset, False

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            function, name, _ = actions["delete_selected"]
            actions["delete_selected"] = (
                function,
                name,
                "Untrack selected conferences (deletes them with their history)",
            )
        return actions

    # ---- columns

    @admin.display(description="members", ordering="active_members")
    def members(self, conference):
        return conference.active_members

    @admin.display(description="hold", boolean=True, ordering="hold")
    def hold_shown(self, conference):
        return conference.hold

    @admin.display(description="mute", boolean=True, ordering="mute")
    def mute_shown(self, conference):
        return conference.mute

    @admin.display(description="last change", ordering="last_changed_at")
    def last_change(self, conference):
        if conference.last_changed_at is None:
            return None
        # As on the dashboard: the viewer's time zone, named; the exact form on hover.
        return local_time(conference.last_changed_at)

    @admin.display(description="poll health", ordering="poll_status")
    def poll_health(self, conference):
        status = conference.get_poll_status_display()
        if conference.paused:
            status = f"paused; {status}"
        elif conference.is_stale:
            status = f"stale; {status}"
        when = relative_time(conference.last_polled_at, empty="never polled")
        return format_html(
            '<span class="poll-{}" title="{}">{}</span><br>'
            '<span class="quiet" title="last polled">{}</span>',
            "paused" if conference.paused else conference.poll_status,
            conference.poll_error,
            status,
            when,
        )

    @admin.display(description="label", ordering="label")
    def label_and_link(self, conference):
        return format_html(
            '{}<br><a href="{}" class="live-link" title="The live dashboard page">live</a>',
            conference.label or "-",
            reverse("conferences:detail", args=[conference.pk]),
        )

    @admin.display(description="records")
    def records(self, conference):
        links = [
            (changelist_url(model, conference=conference.pk), f"all {label}")
            for model, label in [
                (HistoryEntry, "history"),
                (PollError, "poll errors"),
                (Event, "events"),
                (Delivery, "alert deliveries"),
            ]
        ]
        links.append((reverse("conferences:detail", args=[conference.pk]), "live dashboard page"))
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    # ---- actions

    @admin.action(description="Pause tracking", permissions=["pause"])
    def pause_tracking(self, request, queryset):
        changed = list(queryset.filter(paused=False))
        tracking.pause(Conference.objects.filter(pk__in=[c.pk for c in changed]))
        self.log_each(request, changed, "Paused tracking.")
        if not changed:
            self.message_user(request, "Nothing to pause: they were paused already.", messages.INFO)
            return
        self.message_user(
            request,
            ngettext("Paused %(count)d conference.", "Paused %(count)d conferences.", len(changed))
            % {"count": len(changed)},
        )

    @admin.action(description="Resume tracking", permissions=["pause"])
    def resume_tracking(self, request, queryset):
        changed = list(queryset.filter(paused=True))
        tracking.resume(Conference.objects.filter(pk__in=[c.pk for c in changed]))
        self.log_each(request, changed, "Resumed tracking.")
        if not changed:
            self.message_user(request, "Nothing to resume: none of them was paused.", messages.INFO)
            return
        self.message_user(
            request,
            ngettext(
                "Resumed %(count)d conference; it is due now.",
                "Resumed %(count)d conferences; they are due now.",
                len(changed),
            )
            % {"count": len(changed)},
        )

    @admin.action(description="Poll now (within the budget)", permissions=["pause"])
    def poll_now(self, request, queryset):
        chosen = list(queryset.order_by("pk")[: support.MAX_POLL_NOW + 1])
        if len(chosen) > support.MAX_POLL_NOW:
            self.message_user(
                request,
                f"Poll now takes at most {support.MAX_POLL_NOW} conferences at once.",
                messages.ERROR,
            )
            return
        request.session.setdefault(POLL_NOW_SINCE, iso(timezone.now()))
        try:
            tasks.poll_now.delay([c.pk for c in chosen], request.user.pk)
        except OperationalError as error:
            self.message_user(request, f"Could not queue the poll: {error}", messages.ERROR)
            return
        self.log_each(request, chosen, "Poll now requested.")
        self.message_user(
            request,
            ngettext(
                "Polling %(count)d conference now, within its account's budget. "
                "Reload the page to see the result when it is in.",
                "Polling %(count)d conferences now, within their accounts' budgets. "
                "Reload the page to see the results when they are in.",
                len(chosen),
            )
            % {"count": len(chosen)},
        )

    @admin.action(description="Export selected as CSV", permissions=["read"])
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="conferences-{stamp}.csv"'
        writer = csv.writer(response)
        writer.writerow(EXPORT_FIELDS)
        for conference in queryset.select_related("account").order_by("account__name", "pk"):
            writer.writerow(
                [exports.csv_value(export_value(conference, name)) for name in EXPORT_FIELDS]
            )
        return response

    def log_each(self, request, conferences, message):
        if conferences:
            LogEntry.objects.log_actions(request.user.pk, conferences, CHANGE, message)

    # ---- poll-now outcomes, import

    def report_poll_now(self, request):
        """Tell the user what their poll-now found, once, on their next page."""
        since = request.session.get(POLL_NOW_SINCE)
        if not since:
            return
        entries = list(support.poll_now_results(user=request.user, since=parse_time(since)))
        if not entries:
            return
        shown = [
            f"{entry.object_repr}: {entry.change_message.removeprefix(support.POLL_NOW_RESULT)}"
            for entry in entries[:MAX_OUTCOMES_SHOWN]
        ]
        if len(entries) > MAX_OUTCOMES_SHOWN:
            shown.append(f"and {len(entries) - MAX_OUTCOMES_SHOWN} more (see their history)")
        self.message_user(request, "Poll now finished. " + " ".join(shown))
        request.session[POLL_NOW_SINCE] = iso(entries[-1].action_time)

    def changelist_view(self, request, extra_context=None):
        self.report_poll_now(request)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self.report_poll_now(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="conferences_conference_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        result = error = None
        if request.method == "POST" and form.is_valid():
            account = form.cleaned_data["account"]
            try:
                result = importing.import_conferences(account=account, data=form.csv_data())
            except importing.FileRefused as refused:
                error = str(refused)
            else:
                added = Conference.objects.filter(
                    account=account, conference_id__in=result.added
                ).order_by("pk")
                if result.added:
                    LogEntry.objects.log_actions(
                        request.user.pk, list(added), ADDITION, "Imported from CSV."
                    )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import conferences from CSV",
            "form": form,
            "result": result,
            "file_error": error,
            "max_rows": importing.MAX_ROWS,
        }
        return TemplateResponse(request, "admin/conferences/conference/import.html", context)


def export_value(conference, name):
    if name == "tags":
        return ";".join(conference.tags)
    if name == "account":
        return conference.account.name
    if name in ("callback_url", "fallback_url"):
        return redact.without_userinfo(getattr(conference, name)) or ""
    value = getattr(conference, name)
    if isinstance(value, datetime):
        return iso(value)
    return "" if value is None else value
