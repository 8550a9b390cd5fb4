"""Catapult accounts: credentials that are written, never shown; a test of them."""

from django import forms
from django.contrib import admin, messages
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from conferences.admin.common import DeletesItsRecords, LabelledSplitDateTime
from conferences.callbacks import receiver
from conferences.catapult import REAL_API_BASE_URL
from conferences.models import REQUEST_BUDGET_MAX, REQUEST_BUDGET_MIN, Account
from conferences.polling import support
from conferences.registry import roles

MAX_ACCOUNTS_TESTED = 5


class AccountForm(forms.ModelForm):
    """Token and secret are write-only: never shown back; blank keeps the stored
    (encrypted) values, except when the base URL changes: the stored credentials are
    not sent to a new address unless they are entered again."""

    base_url = forms.URLField(
        assume_scheme="https",
        initial=REAL_API_BASE_URL,
        label="Base URL",
        help_text="The real API, or a simulator for testing. Changing it asks for the "
        "token and secret again.",
    )
    api_token = forms.CharField(
        required=False,
        label="API token",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Never shown. Blank keeps the stored token.",
    )
    api_secret = forms.CharField(
        required=False,
        label="API secret",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Never shown. Blank keeps the stored secret.",
    )

    class Meta:
        model = Account
        fields = ["name", "user_id", "base_url", "request_budget", "paused_until"]
        # The browser knows the bounds too; the model's validator is what refuses.
        widgets = {
            "request_budget": forms.NumberInput(
                attrs={"min": REQUEST_BUDGET_MIN, "max": REQUEST_BUDGET_MAX, "step": "any"}
            ),
            "paused_until": LabelledSplitDateTime("Paused until"),
        }

    def clean(self):
        cleaned = super().clean()
        both = cleaned.get("api_token") and cleaned.get("api_secret")
        if self.instance.pk is None and not both:
            raise forms.ValidationError("A new account needs its API token and secret.")
        if self.instance.pk is not None and "base_url" in self.changed_data and not both:
            raise forms.ValidationError(
                "The base URL changed: enter the API token and secret again to send them "
                "to the new address."
            )
        return cleaned

    @sensitive_variables("token", "secret", "current_token", "current_secret")
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


sensitive_credentials = method_decorator(sensitive_post_parameters("api_token", "api_secret"))


@admin.register(Account)
class AccountAdmin(DeletesItsRecords, admin.ModelAdmin):
    form = AccountForm
    list_display = [
        "name",
        "user_id",
        "base_url",
        "request_budget",
        "settings_check",
        "problem",
        "paused_until",
    ]
    search_fields = ["name", "user_id"]
    ordering = ["name"]  # a stable order for the list and the autocompletes' pages
    readonly_fields = [
        "settings_check",
        "problem",
        "problem_message",
        "problem_at",
        "callback_url_to_configure",
        "last_callback_event",
        "callback_registrations",
    ]
    actions = ["check_credentials"]
    has_manage_permission = roles.admin_permission("accounts.manage")  # the roles table

    def get_fields(self, request, obj=None):
        fields = ["name", "user_id", "base_url", "api_token", "api_secret"]
        fields += ["request_budget", "paused_until"]
        shown = list(self.readonly_fields) if obj else []
        if not self.has_change_permission(request, obj):
            fields = [name for name in fields if name not in ("api_token", "api_secret")]
            # The callback URL's secret lets anyone post events: admins only.
            shown = [name for name in shown if name != "callback_url_to_configure"]
        return fields + shown

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        receiver.set_up(obj, username=None)  # its callback URL, made once

    @admin.display(description="Settings")
    def settings_check(self, account):
        """A stored budget or base URL that every entry now refuses (an older row, a
        narrowed allow-list) is shown, not computed with."""
        problems = account.settings_problems()
        return f"Misconfigured: {' '.join(problems)}" if problems else "OK"

    @admin.display(description="Callback URL")
    def callback_url_to_configure(self, account):
        """What to give Catapult as the conferences' callbackUrl (made when the account
        is saved; showing the page changes nothing)."""
        try:
            url = receiver.callback_url(account, create=False)
        except Exception as error:  # noqa: BLE001 - an unreadable secret must not break the page
            return f"unavailable: {error}"
        if url is None:
            return f"none yet: save this account, or run `manage.py callback_url {account.name}`"
        return url

    @admin.display(description="Last callback event")
    def last_callback_event(self, account):
        return receiver.last_event_at(account) or "none yet"

    @admin.display(description="Conferences registered by callbacks")
    def callback_registrations(self, account):
        return receiver.registrations(account)

    @sensitive_credentials
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.action(
        description="Test credentials (one request within the budget)", permissions=["manage"]
    )
    def check_credentials(self, request, queryset):
        accounts = list(queryset.order_by("name")[: MAX_ACCOUNTS_TESTED + 1])
        if len(accounts) > MAX_ACCOUNTS_TESTED:
            self.message_user(
                request,
                f"Test at most {MAX_ACCOUNTS_TESTED} accounts at once.",
                messages.ERROR,
            )
            return
        for account in accounts:
            check = support.check_credentials(account)
            level = {True: messages.SUCCESS, False: messages.ERROR}.get(
                check.accepted, messages.WARNING
            )
            self.message_user(request, f"Account {account}: {check.message}", level)
            self.log_change(request, account, f"Tested the credentials: {check.message}")
