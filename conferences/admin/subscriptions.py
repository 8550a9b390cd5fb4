"""Everyone's alert subscriptions (each user manages their own on the Alerts page)."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import ngettext

from conferences.alerting import channels, sharing, subscriptions
from conferences.models import Acknowledgement, ShareLink, Subscription
from conferences.registry import crypto, roles


class SubscriptionAdminForm(forms.ModelForm):
    """Kinds and time zone checked as the `subscribe` command and the Alerts page do. A
    channel's URL and a webhook's secret are write-only: blank keeps the stored ones."""

    channel_url = forms.CharField(
        required=False,
        max_length=channels.URL_MAX,
        label="Channel URL",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Instead of an email address: slack://..., json://..., webhook://host/path "
        "(see the README's channel kinds). Stored encrypted and never shown; blank keeps the "
        "stored channel.",
    )
    webhook_secret = forms.CharField(
        required=False,
        max_length=200,
        label="Webhook secret",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="For webhook:// and webhooks:// channels: the signing secret (16+ "
        "characters), needed with a new URL; blank keeps the stored one.",
    )

    class Meta:
        model = Subscription
        fields = ["email", "user", "scope", "account", "tag", "conferences", "kinds"]
        fields += ["members_at_most", "members_above", "time_zone"]
        fields += ["rule_after_seconds", "drop_percent", "expect_schedule", "grace_seconds"]
        fields += ["notify_resolved", "quiet_start", "quiet_end", "quiet_drop"]
        labels = {
            "email": "To",
            "rule_after_seconds": "Rules: after (seconds)",
            "grace_seconds": "Grace (seconds)",
        }
        help_texts = {
            "email": "An email address; for a channel, its label (set the channel below).",
            "kinds": "Comma-separated: state, hold, mute, members, polling, first; rules: "
            + ", ".join(subscriptions.RULES)
            + ".",
            "expect_schedule": 'For the schedule rule, e.g. "Mon,Wed 09:00 Europe/Berlin".',
            "quiet_start": "Quiet hours, in the subscription's time zone (both or neither).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "email" in self.fields:  # not when the admin shows it read-only
            self.fields["email"].required = False  # a channel URL instead (clean_target)

    def clean_kinds(self):
        return subscriptions.clean_kinds(self.cleaned_data["kinds"])

    def clean_drop_percent(self):
        return subscriptions.clean_drop(self.cleaned_data["drop_percent"])

    def clean_expect_schedule(self):
        return subscriptions.clean_schedule(self.cleaned_data["expect_schedule"])

    def clean(self):
        """The target (an address, or a channel URL), and the rules' parameters checked as
        the `subscribe` command checks them."""
        cleaned = super().clean()
        self.clean_target(cleaned)
        kinds = cleaned.get("kinds") or []
        values = {
            name: cleaned.get(name)
            for name in ("rule_after_seconds", "drop_percent", "expect_schedule", "grace_seconds")
        }
        fields = {"rule_after": "rule_after_seconds", "grace": "grace_seconds"}
        fields.update(expect="expect_schedule", drop_percent="drop_percent")
        for argument, messages in subscriptions.rule_errors(kinds, values).items():
            self.add_error(fields[argument], messages)
        for name in ("rule_after_seconds", "grace_seconds"):
            if values[name] is not None and values[name] < 0:
                self.add_error(name, "A duration cannot be negative.")
        if (cleaned.get("quiet_start") is None) != (cleaned.get("quiet_end") is None):
            self.add_error("quiet_end", "Give both the start and the end of quiet hours.")
        if cleaned.get("quiet_drop") and cleaned.get("quiet_start") is None:
            self.add_error("quiet_drop", "Dropping alerts in quiet hours needs the quiet hours.")
        return cleaned

    def clean_time_zone(self):
        return subscriptions.clean_time_zone(self.cleaned_data["time_zone"])

    def clean_target(self, cleaned):
        """A new channel URL replaces the target; an unchanged channel label keeps the
        stored channel (a new secret replaces a webhook's); anything else is an address."""
        if "email" not in self.fields:
            return
        url = (cleaned.get("channel_url") or "").strip()
        secret = (cleaned.get("webhook_secret") or "").strip()
        email = (cleaned.get("email") or "").strip()
        instance = self.instance
        is_webhook = channels.scheme_of(url or email) in channels.WEBHOOK_SCHEMES
        if is_webhook and url and not secret:
            self.add_error("webhook_secret", "Give the webhook's signing secret.")
        elif url:
            try:
                channel = channels.clean_channel(url, secret=secret)
            except ValidationError as error:
                self.add_error("channel_url", error)
            else:
                cleaned["email"] = channel.label
                instance.channel_encrypted = channel.channel_encrypted
                instance.webhook_secret_encrypted = channel.webhook_secret_encrypted
        elif instance.pk and instance.is_channel and email == instance.email:
            if secret and not is_webhook:
                self.add_error("webhook_secret", "A secret applies to webhook:// channels only.")
            elif secret:
                try:
                    channels.clean_secret(secret)
                except ValidationError as error:
                    self.add_error("webhook_secret", error)
                else:
                    instance.webhook_secret_encrypted = crypto.encrypt(secret)
        else:
            try:
                cleaned["email"] = subscriptions.clean_email(email)
            except ValidationError as error:
                self.add_error("email", error)
            if secret:
                self.add_error("webhook_secret", "A secret applies to webhook:// channels only.")
            instance.channel_encrypted = instance.webhook_secret_encrypted = ""


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
    list_display = ["email", "user", "scope", "account", "tag", "kinds", "rules", "time_zone"]
    list_display += ["created_at"]
    list_filter = ["scope", KindFilter]
    search_fields = ["email", "tag"]
    list_select_related = ["user", "account"]
    autocomplete_fields = ["user", "conferences"]  # accounts are few: a plain select
    actions = ["send_test_message"]
    has_test_permission = roles.admin_permission("subscriptions.others")  # the roles table

    @admin.action(
        description="Send a test message to the selected subscriptions", permissions=["test"]
    )
    def send_test_message(self, request, queryset):
        for subscription in queryset:
            channels.queue_test_message(subscription)
        count = queryset.count()
        queued = ngettext(
            "Queued a test message to %(count)d subscription",
            "Queued a test message to %(count)d subscriptions",
            count,
        ) % {"count": count}
        self.message_user(request, f"{queued}; the deliveries show how each went.")

    @admin.display(description="rules")
    def rules(self, obj):
        return subscriptions.rule_text(obj) or "–"

    def get_readonly_fields(self, request, obj=None):
        # Choosing the user means searching the users, which support roles may not see:
        # they manage subscriptions by email, superusers can also set the user.
        if not request.user.has_perm("auth.view_user"):
            return ["user"]
        return []


@admin.register(Acknowledgement)
class AcknowledgementAdmin(admin.ModelAdmin):
    """Who acknowledged which conference's alerts, when, why and until when (read-only)."""

    list_display = ["conference", "by", "what", "reason", "created_at", "expires_at", "ended_at"]
    list_select_related = ["conference"]
    search_fields = ["by", "conference__conference_id", "reason"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Share links of conferences; revoke them with the action."""

    list_display = ["conference", "created_by", "created_at", "expires_at", "revoked_at"]
    list_select_related = ["conference", "created_by"]
    search_fields = ["conference__conference_id", "conference__label"]
    actions = ["revoke"]
    has_manage_permission = roles.admin_permission("share_links.manage")  # the roles table

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected share links", permissions=["manage"])
    def revoke(self, request, queryset):
        links = list(queryset)
        for link in links:
            sharing.revoke(link)
        self.message_user(
            request,
            ngettext("Revoked %(count)d share link.", "Revoked %(count)d share links.", len(links))
            % {"count": len(links)},
        )
