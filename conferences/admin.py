from django import forms
from django.contrib import admin

from conferences import subscriptions, tracking
from conferences.catapult import REAL_API_BASE_URL
from conferences.models import (
    Account,
    Conference,
    Delivery,
    Event,
    HistoryEntry,
    PollError,
    StatusChange,
    Subscription,
)


class AccountForm(forms.ModelForm):
    """Token and secret are write-only: blank keeps the stored (encrypted) values."""

    base_url = forms.URLField(
        assume_scheme="https",
        initial=REAL_API_BASE_URL,
        help_text="The real API, or a simulator for testing.",
    )
    api_token = forms.CharField(
        required=False, widget=forms.PasswordInput, help_text="Blank keeps the stored token."
    )
    api_secret = forms.CharField(
        required=False, widget=forms.PasswordInput, help_text="Blank keeps the stored secret."
    )

    class Meta:
        model = Account
        fields = ["name", "user_id", "base_url", "request_budget", "paused_until"]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not (
            cleaned.get("api_token") and cleaned.get("api_secret")
        ):
            raise forms.ValidationError("A new account needs its API token and secret.")
        return cleaned

    def save(self, commit=True):
        account = super().save(commit=False)
        token = self.cleaned_data.get("api_token")
        secret = self.cleaned_data.get("api_secret")
        if token or secret:
            current_token, current_secret = account.credentials() if account.pk else ("", "")
            account.set_credentials(token=token or current_token, secret=secret or current_secret)
            # New credentials deserve a try at once; the problem ends with a good poll.
            account.paused_until = None
        if commit:
            account.save()
        return account


class DeletesItsRecords:
    """Deleting a conference or an account takes its events and alert emails along (the
    models cascade), although neither can be deleted on its own here."""

    records = {Event._meta.verbose_name, Delivery._meta.verbose_name}

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed - self.records, protected


@admin.register(Account)
class AccountAdmin(DeletesItsRecords, admin.ModelAdmin):
    form = AccountForm
    list_display = ["name", "user_id", "base_url", "request_budget", "problem", "paused_until"]
    search_fields = ["name", "user_id"]
    readonly_fields = ["problem", "problem_message", "problem_at", "budget_next_at"]


class HistoryInline(admin.TabularInline):
    model = HistoryEntry
    fields = ["first_seen_at", "last_seen_at", "state", "active_members", "hold", "mute"]
    readonly_fields = fields
    ordering = ["-first_seen_at"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        tags = set()
        for row in Conference.objects.values_list("tags", flat=True).distinct()[:500]:
            tags.update(row)
        return [(tag, tag) for tag in sorted(tags)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(tags__contains=[self.value()])
        return queryset


@admin.register(Conference)
class ConferenceAdmin(DeletesItsRecords, admin.ModelAdmin):
    list_display = [
        "conference_id",
        "label",
        "account",
        "state",
        "active_members",
        "hold",
        "mute",
        "poll_status",
        "last_polled_at",
        "paused",
    ]
    list_filter = ["state", "poll_status", "paused", "account", TagFilter]
    search_fields = ["conference_id", "label"]
    list_select_related = ["account"]
    show_full_result_count = False
    fields = ["account", "conference_id", "label", "tags", "paused"]
    inlines = [HistoryInline]
    actions = ["pause_tracking", "resume_tracking"]

    def get_readonly_fields(self, request, obj=None):
        return ["account", "conference_id"] if obj else []

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            queryset |= self.model.objects.filter(tags__contains=[search_term.strip().lower()])
        return queryset, may_have_duplicates

    @admin.action(description="Pause tracking")
    def pause_tracking(self, request, queryset):
        queryset.update(paused=True)

    @admin.action(description="Resume tracking")
    def resume_tracking(self, request, queryset):
        tracking.resume(queryset)


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False
    list_select_related = ["conference"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(HistoryEntry)
class HistoryEntryAdmin(ReadOnlyAdmin):
    list_display = ["conference", "state", "active_members", "hold", "mute"]
    list_display += ["first_seen_at", "last_seen_at"]
    list_filter = ["state"]
    search_fields = ["conference__conference_id", "conference__label"]


@admin.register(StatusChange)
class StatusChangeAdmin(ReadOnlyAdmin):
    list_display = ["conference", "from_state", "to_state", "changed_at"]
    list_filter = ["to_state"]
    search_fields = ["conference__conference_id", "conference__label"]


@admin.register(PollError)
class PollErrorAdmin(ReadOnlyAdmin):
    list_display = ["conference", "poll_status", "message", "first_seen_at", "last_seen_at"]
    list_display += ["occurrences"]
    list_filter = ["poll_status"]
    search_fields = ["conference__conference_id", "message"]


class SubscriptionAdminForm(forms.ModelForm):
    """Kinds and time zone checked as the `subscribe` command and the Alerts page do."""

    class Meta:
        model = Subscription
        fields = ["email", "user", "scope", "account", "tag", "conferences", "kinds"]
        fields += ["members_at_most", "members_above", "time_zone"]

    def clean_kinds(self):
        return subscriptions.clean_kinds(self.cleaned_data["kinds"])

    def clean_time_zone(self):
        return subscriptions.clean_time_zone(self.cleaned_data["time_zone"])


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [(name, name) for name in Subscription.KINDS]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(kinds__contains=[self.value()])
        return queryset


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionAdminForm
    list_display = ["email", "user", "scope", "account", "tag", "kinds", "time_zone"]
    list_display += ["created_at"]
    list_filter = ["scope", KindFilter]
    search_fields = ["email", "tag"]
    list_select_related = ["user", "account"]
    autocomplete_fields = ["user", "account", "conferences"]


class RecordAdmin(ReadOnlyAdmin):
    """Events and deliveries are records of what happened: viewed, never edited here.
    Newest first by id, which the primary key index serves on a big table."""

    ordering = ["-id"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(RecordAdmin):
    list_display = ["occurred_at", "kind", "conference", "account", "before", "after"]
    list_display += ["source", "handled_at"]
    list_filter = ["kind", "source", "account"]
    search_fields = ["conference__conference_id", "conference__label"]
    list_select_related = ["conference", "account"]


@admin.register(Delivery)
class DeliveryAdmin(RecordAdmin):
    list_display = ["created_at", "kind", "email", "conference", "status", "attempts"]
    list_display += ["sent_at", "last_error", "subject"]
    list_filter = ["status", "kind"]
    search_fields = ["email", "conference__conference_id", "subject"]
