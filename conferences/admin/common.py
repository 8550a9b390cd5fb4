"""What the conference, account and record admins share: counting big tables only up
to a cap, searching by conference, filters with fixed choices, deleting a conference or
an account with its records."""

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import NestedObjects
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.paginator import Paginator
from django.db import router
from django.db.models import Q
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import capfirst, smart_split, unescape_string_literal
from django.utils.translation import gettext as _

from conferences.models import (
    Acknowledgement,
    CallbackEvent,
    CallbackSettings,
    Conference,
    ConferenceMembersRead,
    ConferenceState,
    Delivery,
    Event,
    HistoryEntry,
    Member,
    PollError,
    PollStatus,
    ShareLink,
)

RECORD_MODELS = {HistoryEntry, PollError, Event, Delivery}
# A conference's acknowledgements and share links go with it too, and its
# members, its members reads and an account's callback events and settings.
RECORD_MODELS |= {Acknowledgement, ShareLink}
RECORD_MODELS |= {Member, ConferenceMembersRead, CallbackEvent, CallbackSettings}
MAX_PROTECTED_SHOWN = 20


class QuickActionCheckbox:
    """The changelist's row checkbox as Django's admin writes it, without rendering a
    form widget's template for each row: 100 rows took 35-40 ms of the conference
    changelist's 90 (make bench-scale)."""

    def action_checkbox(self, obj):
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(_("Select this object for an action - {}"), str(obj)),
        )


class CappedCountPaginator(Paginator):
    """Counts at most `cap` + 1 rows, never a whole big table: past the cap the
    changelist says "more than 10,000" and pages through the first ones (narrowing the
    filter finds the rest). The count keeps the page's order, so it walks the same index
    as the page (the newest rows first) and stops at the cap."""

    cap = 10_000
    capped = False

    @cached_property
    def count(self):
        counted = self.object_list.values("pk")[: self.cap + 1].count()
        self.capped = counted > self.cap
        return min(counted, self.cap)


def search_words(search_term):
    """The words of a search, as Django's admin splits them ("quoted phrases" stay one)."""
    for word in smart_split(search_term):
        if word[0] in "\"'" and word[0] == word[-1] and len(word) > 1:
            word = unescape_string_literal(word)
        if word.strip():
            yield word.strip()


def conference_search(word):
    """Conferences whose id or label contains the word."""
    return Q(conference_id__icontains=word) | Q(label__icontains=word)


# A search matching more conferences than this filters records with a subquery.
MAX_LISTED_IDS = 10_000


def conferences_matching(word):
    """The pks of the conferences whose id or label contains the word, as a list when
    there are not too many: with the ids in the query Postgres knows how many records
    match and walks the newest first, where a subquery made it read every record of
    every match and sort them (0.6 s for a word in 1,000 labels of 2 million rows)."""
    matching = Conference.objects.filter(conference_search(word)).values_list("pk", flat=True)
    listed = list(matching[: MAX_LISTED_IDS + 1])
    return matching if len(listed) > MAX_LISTED_IDS else listed


def changelist_url(model, **params):
    url = reverse(f"admin:conferences_{model._meta.model_name}_changelist")
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return f"{url}?{query}" if query else url


class DeletesItsRecords:
    """Deleting a conference or an account takes its records along (the models cascade),
    although none can be deleted on its own. The confirmation page counts what goes
    instead of listing every row: a conference may have thousands."""

    def get_deleted_objects(self, objs, request):
        collector = NestedObjects(using=router.db_for_write(self.model))
        collector.collect(objs)
        perms_needed = set()
        for model in collector.model_objs:
            if model is self.model or model in RECORD_MODELS:
                continue
            model_admin = self.admin_site._registry.get(model)
            if model_admin is not None and not model_admin.has_delete_permission(request):
                perms_needed.add(model._meta.verbose_name)
        counts = {
            model._meta.verbose_name_plural: len(found)
            for model, found in collector.model_objs.items()
        }
        deleted = [
            format_html(
                '{}: <a href="{}">{}</a>',
                capfirst(self.model._meta.verbose_name),
                reverse(f"admin:conferences_{self.model._meta.model_name}_change", args=[obj.pk]),
                obj,
            )
            for obj in objs
        ]
        protected = [
            f"{capfirst(obj._meta.verbose_name)}: {obj}"
            for obj in list(collector.protected)[:MAX_PROTECTED_SHOWN]
        ]
        if len(collector.protected) > MAX_PROTECTED_SHOWN:
            protected.append(f"... and {len(collector.protected) - MAX_PROTECTED_SHOWN} more")
        return deleted, counts, perms_needed, protected


def fixed_choice_filter(field_name, title, choices, *, null_label=None):
    """A filter with fixed choices: no `SELECT DISTINCT` over a big table to find them."""
    lookups = list(choices) + ([("none", null_label)] if null_label else [])

    class FixedChoiceFilter(admin.SimpleListFilter):
        parameter_name = field_name

        def lookups(self, request, model_admin):
            return lookups

        def queryset(self, request, queryset):
            value = self.value()
            if value == "none" and null_label:
                return queryset.filter(**{f"{field_name}__isnull": True})
            if value in dict(choices):
                return queryset.filter(**{field_name: value})
            return queryset

    FixedChoiceFilter.title = title
    FixedChoiceFilter.__name__ = f"{field_name.title().replace('_', '')}Filter"
    return FixedChoiceFilter


StateFilter = fixed_choice_filter(
    "state", "state", ConferenceState.choices, null_label="not yet observed"
)
ErrorKindFilter = fixed_choice_filter(
    "poll_status",
    "kind",
    [(value, label) for value, label in PollStatus.choices if value not in ("ok", "pending")],
)


class ConferenceFilter(admin.SimpleListFilter):
    """Shown only when a conference page's "all ..." link chose one: listing every
    conference here would not help anyone; the search finds them."""

    title = "conference"
    parameter_name = "conference"

    def lookups(self, request, model_admin):
        value = self.value()
        if value and value.isdigit():
            conference = Conference.objects.filter(pk=value).first()
            if conference is not None:
                return [(value, conference.conference_id)]
        return []

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(conference_id=self.value())
        return queryset


class LabelledSplitDateTime(AdminSplitDateTime):
    """Django's date and time inputs, each with a label a screen reader reads (Django's
    "Date:" and "Time:" are plain text, so axe finds two unlabelled fields)."""

    def __init__(self, label):
        super().__init__()
        self.widgets[0].attrs["aria-label"] = f"{label}: date"
        self.widgets[1].attrs["aria-label"] = f"{label}: time"
