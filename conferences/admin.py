from django import forms
from django.contrib import admin

from conferences import tracking
from conferences.catapult import REAL_API_BASE_URL
from conferences.models import Account, Conference, HistoryEntry, PollError, StatusChange


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


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
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
class ConferenceAdmin(admin.ModelAdmin):
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
