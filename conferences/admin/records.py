"""Records of what happened (history, status changes, poll errors, events, alert
deliveries, the admin log): read by every role, changed by nobody. A conference's page
shows the newest few of each and links to all of them."""

from django import forms
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.db.models import Q
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from conferences.admin.common import (
    CappedCountPaginator,
    ConferenceFilter,
    ErrorKindFilter,
    QuickActionCheckbox,
    StateFilter,
    changelist_url,
    conferences_matching,
    search_words,
)
from conferences.models import (
    Delivery,
    Event,
    HistoryEntry,
    PollError,
)
from conferences.templatetags.confwatch_time import local_time


class NewestFormSet(forms.BaseInlineFormSet):
    """Only the newest few rows, so that a conference with thousands of records opens
    fast; `all_url` lists them all."""

    newest = 5
    all_url = None
    all_label = ""

    def get_queryset(self):
        queryset = super().get_queryset()
        if not queryset.query.is_sliced:
            queryset = self._queryset = queryset[: self.newest]
        return queryset


class NewestInline(admin.TabularInline):
    """The newest few records of a conference, read-only, and a link to all of them."""

    formset = NewestFormSet
    template = "admin/conferences/edit_inline/newest_tabular.html"
    newest = 5
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.newest = self.newest
        formset.all_url = changelist_url(self.model, conference=obj.pk) if obj else None
        formset.all_label = self.model._meta.verbose_name_plural
        return formset

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def to_the_second(field_name, description):
    """A read-only column showing a time to the second with its zone (the admin's
    default has neither), the exact form on hover."""

    @admin.display(description=description)
    def shown(self, obj):
        value = getattr(obj, field_name)
        return None if value is None else local_time(value)

    return shown


class HistoryInline(NewestInline):
    model = HistoryEntry
    fields = ["first_seen", "last_seen", "state", "active_members", "hold", "mute"]
    readonly_fields = fields
    ordering = ["-first_seen_at", "-id"]
    newest = 10
    verbose_name_plural = "history (newest 10)"
    first_seen = to_the_second("first_seen_at", "first seen")
    last_seen = to_the_second("last_seen_at", "last seen")


class PollErrorInline(NewestInline):
    model = PollError
    fields = ["first_seen", "last_seen", "poll_status", "occurrences", "message"]
    readonly_fields = fields
    ordering = ["-first_seen_at", "-id"]
    verbose_name_plural = "poll errors (newest 5)"
    first_seen = to_the_second("first_seen_at", "first seen")
    last_seen = to_the_second("last_seen_at", "last seen")


class EventInline(NewestInline):
    model = Event
    fields = ["occurred", "kind", "before", "after", "source"]
    readonly_fields = fields
    ordering = ["-occurred_at", "-id"]
    verbose_name_plural = "events (newest 5)"
    occurred = to_the_second("occurred_at", "occurred")


class DeliveryInline(NewestInline):
    model = Delivery
    fields = ["created", "email", "kind", "status", "sent", "subject"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    verbose_name_plural = "alert deliveries (newest 5)"
    created = to_the_second("created_at", "created")
    sent = to_the_second("sent_at", "sent")


class RecordAdmin(QuickActionCheckbox, admin.ModelAdmin):
    """Records of what happened: read by every role, changed by nobody, newest first
    (the primary key, which its index serves on a big table), counted at most to the
    paginator's cap."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    # "Show counts" would count every filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER
    list_select_related = ["conference"]
    ordering = ["-id"]
    search_fields = ["conference__conference_id", "conference__label"]
    search_help_text = "Conference id or label; every word must match."
    # More fields the search looks in, besides the conference's id and label.
    also_searched = []

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        for word in search_words(search_term):
            condition = Q(conference__in=conferences_matching(word))
            for name in self.also_searched:
                condition |= Q(**{f"{name}__icontains": word})
            queryset = queryset.filter(condition)
        return queryset, False


@admin.register(HistoryEntry)
class HistoryEntryAdmin(RecordAdmin):
    list_display = ["conference", "state", "active_members", "hold", "mute"]
    list_display += ["first_seen_at", "last_seen_at"]
    list_filter = [ConferenceFilter, "conference__account", StateFilter, "first_seen_at"]


@admin.register(PollError)
class PollErrorAdmin(RecordAdmin):
    list_display = ["conference", "poll_status", "message", "first_seen_at", "last_seen_at"]
    list_display += ["occurrences"]
    list_filter = [ConferenceFilter, "conference__account", ErrorKindFilter, "first_seen_at"]
    also_searched = ["message"]


@admin.register(Event)
class EventAdmin(RecordAdmin):
    list_display = ["occurred_at", "kind", "conference", "account", "before", "after"]
    list_display += ["source", "handled_at"]
    list_filter = [ConferenceFilter, "account", "kind", "occurred_at"]
    list_select_related = ["conference", "account"]


@admin.register(Delivery)
class DeliveryAdmin(RecordAdmin):
    list_display = ["created_at", "kind", "email", "conference", "status", "attempts"]
    list_display += ["sent_at", "last_error", "subject"]
    list_filter = [ConferenceFilter, "conference__account", "kind", "status", "created_at"]
    also_searched = ["email", "subject"]
    readonly_fields = ["attempt_history"]

    @admin.display(description="tries")
    def attempt_history(self, obj):
        """Every try of the delivery: when, how it ended, its error."""
        rows = [
            (local_time(entry["at"]), entry.get("result", ""), entry.get("error", ""))
            for entry in obj.tries
        ]
        return format_html_join(mark_safe("<br>"), "{}: {} {}", rows) or "–"


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    """Who changed what in the admin (superusers; each object's history page shows its
    own entries to everyone who may view the object)."""

    list_display = ["action_time", "user", "content_type", "object_repr", "action_flag"]
    list_display += ["change_message"]
    list_filter = ["action_flag", "content_type"]
    search_fields = ["object_repr", "change_message", "user__username"]
    list_select_related = ["user", "content_type"]
    date_hierarchy = "action_time"
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
