import functools

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from conferences.alerting import acknowledgements, sharing, subscriptions
from conferences.models import Account, Subscription, UserPreference
from conferences.registry import tracking


class TrackForm(forms.Form):
    account = forms.ModelChoiceField(queryset=Account.objects.order_by("name"), empty_label=None)
    conference_ids = forms.CharField(
        label="Conference ids",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "conf-abc123, conf-def456"}),
        help_text="One or more Catapult conference ids, separated by spaces, commas, semicolons "
        "or new lines.",
    )
    label = forms.CharField(max_length=200, required=False)
    tags = forms.CharField(
        max_length=500, required=False, help_text="Comma-separated, e.g. acme, escalation."
    )

    def clean_conference_ids(self):
        return tracking.parse_conference_ids(self.cleaned_data["conference_ids"])

    def clean_tags(self):
        tags = [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]
        for tag in tags:
            if len(tag) > 50:
                raise ValidationError(f"Tag {tag[:20]!r}... is longer than 50 characters.")
        return tags


SORT_COLUMNS = ("label", "members", "changed", "state")


class QuickSelect(forms.Select):
    """A <select> written in Python. The overview shows eight filters on every page;
    Django's template-rendered widgets cost about 2 ms each there (a template per option)."""

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, attrs)
        chosen = set(self.format_value(value))
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (key, mark_safe(" selected") if str(key) in chosen else "", label)
                for key, label in self.choices
            ),
        )
        return format_html('<select name="{}"{}>{}</select>', name, flatatt(attrs), options)


class QuickTextInput(forms.TextInput):
    """A text <input> written in Python, for the same reason."""

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, attrs)
        shown = self.format_value(value)
        value_attr = format_html(' value="{}"', shown) if shown not in (None, "") else ""
        return format_html('<input type="text" name="{}"{}{}>', name, value_attr, flatatt(attrs))


def account_choices():
    return [("", "any account"), *Account.objects.order_by("name").values_list("pk", "name")]


class FilterForm(forms.Form):
    """The overview's filters, sort and page: all in the URL, so a view is bookmarkable and
    back and forward work. Every field is optional; a bad value is a form error."""

    q = forms.CharField(
        required=False,
        max_length=100,
        label="Search",
        help_text="Id, label, tag or from number.",
        widget=QuickTextInput(attrs={"placeholder": "id, label, tag, +1 number"}),
    )
    state = forms.ChoiceField(
        required=False,
        widget=QuickSelect,
        label="State",
        choices=[
            ("", "any state"),
            ("pending", "not yet observed"),
            ("created", "created"),
            ("active", "active"),
            ("completed", "completed"),
            ("completed_today", "completed today"),
        ],
    )
    account = forms.ModelChoiceField(
        queryset=Account.objects.order_by("name"),
        required=False,
        empty_label="any account",
        label="Account",
        widget=QuickSelect,
    )
    tag = forms.CharField(required=False, max_length=50, label="Tag", widget=QuickTextInput)
    health = forms.ChoiceField(
        required=False,
        widget=QuickSelect,
        label="Polling",
        choices=[
            ("", "any"),
            ("ok", "OK"),
            ("problem", "any problem"),
            ("failing", "failing"),
            ("not_found", "not found"),
            ("stale", "stale"),
            ("pending", "never polled"),
        ],
    )
    hold = forms.ChoiceField(
        required=False,
        widget=QuickSelect,
        label="Hold",
        choices=[("", "any"), ("on", "on hold"), ("off", "not on hold")],
    )
    mute = forms.ChoiceField(
        required=False,
        widget=QuickSelect,
        label="Mute",
        choices=[("", "any"), ("on", "muted"), ("off", "not muted")],
    )
    # The parameter keeps its old name (bookmarks); its words say what it does.
    tracking = forms.ChoiceField(
        required=False,
        widget=QuickSelect,
        label="Paused",
        choices=[("", "not paused"), ("paused", "paused only"), ("all", "paused or not")],
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[("", "problems first")]
        + [(key, key) for name in SORT_COLUMNS for key in (name, f"-{name}")],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # One plain query for the drop-down, when it is drawn (a model choice field reads
        # its choices through a server-side cursor: three round trips on every page).
        self.fields["account"].widget.choices = functools.cache(account_choices)


# What each kind of alert is about, as the Alerts page offers them.
KIND_LABELS = {
    "state": "state changes (created, active, completed)",
    "hold": "hold on or off",
    "mute": "mute on or off",
    "members": "active members changes",
    "polling": "polling problems and recoveries",
    "first": "first observation of a conference",
    "not_started": "rule: still created (not started) after the duration",
    "alone": "rule: exactly one active member for the duration",
    "all_held": "rule: whole conference on hold for the duration",
    "all_muted": "rule: whole conference muted for the duration",
    "members_drop": "rule: active members drop by the percentage within a minute",
    "schedule": "rule: not active at the expected start (plus grace)",
}


class SubscriptionForm(forms.Form):
    """The Alerts page's "add a subscription" form; the service checks it all again."""

    email = forms.CharField(
        max_length=2000,
        label="To",
        help_text="An email address, or a channel URL: slack://..., json://..., "
        "webhook://host/path (signed) and the other kinds the README lists.",
    )
    secret = forms.CharField(
        required=False,
        max_length=200,
        label="Webhook secret",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="For webhook:// targets: the signing secret (16+ characters); blank: "
        "confwatch makes one and shows it once.",
    )
    scope = forms.ChoiceField(
        choices=Subscription.Scope.choices,
        initial=Subscription.Scope.ALL,
        widget=forms.RadioSelect,
        label="About",
    )
    account = forms.ModelChoiceField(
        queryset=Account.objects.order_by("name"),
        required=False,
        empty_label="any account",
        help_text="For an account's conferences, or to tell apart conference ids tracked "
        "on several accounts.",
    )
    tag = forms.CharField(max_length=50, required=False)
    conference_ids = forms.CharField(
        label="Conference ids",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "conf-abc123, conf-def456"}),
        help_text="Separated by spaces, commas, semicolons or new lines.",
    )
    kinds = forms.MultipleChoiceField(
        choices=[(name, KIND_LABELS.get(name, name)) for name in Subscription.KINDS],
        initial=["state"],
        widget=forms.CheckboxSelectMultiple,
        label="Alert me about",
    )
    members_at_most = forms.IntegerField(
        required=False,
        min_value=0,
        label="Members at most",
        help_text="Members alerts only when the count drops to this or below.",
    )
    members_above = forms.IntegerField(
        required=False,
        min_value=0,
        label="Members above",
        help_text="Members alerts only when the count rises above this.",
    )
    time_zone = forms.CharField(
        max_length=60,
        required=False,
        widget=forms.TextInput(attrs={"list": "zone-names", "placeholder": "Europe/Berlin"}),
        help_text="For the times in the emails; blank: the site's.",
    )

    rule_after = forms.CharField(
        max_length=20,
        required=False,
        label="Rules: after",
        widget=forms.TextInput(attrs={"placeholder": "10m"}),
        help_text="How long a rule's condition must hold: 90s, 10m, 2h.",
    )
    drop_percent = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=100,
        label="Members drop (%)",
        help_text="For the members drop rule, e.g. 50.",
    )
    expect = forms.CharField(
        max_length=100,
        required=False,
        label="Expected start",
        widget=forms.TextInput(attrs={"placeholder": "Mon,Wed 09:00 Europe/Berlin"}),
        help_text="For the schedule rule: days, time and time zone.",
    )
    grace = forms.CharField(
        max_length=20,
        required=False,
        label="Grace",
        widget=forms.TextInput(attrs={"placeholder": "5m"}),
        help_text="For the schedule rule: how late it may start.",
    )
    notify_resolved = forms.BooleanField(
        required=False, initial=True, label="Email me when a rule's condition clears"
    )
    quiet_hours = forms.CharField(
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "22:00-07:00"}),
        help_text="In the time zone above: alerts are held and summarised when they end.",
    )
    quiet_drop = forms.BooleanField(
        required=False, label="Drop alerts in quiet hours instead of summarising them"
    )

    def clean_time_zone(self):
        return subscriptions.clean_time_zone(self.cleaned_data["time_zone"])

    def clean(self):
        cleaned = super().clean()
        scope = cleaned.get("scope")
        if scope == Subscription.Scope.ACCOUNT and not cleaned.get("account"):
            self.add_error("account", "Choose the account.")
        if scope == Subscription.Scope.TAG and not cleaned.get("tag", "").strip():
            self.add_error("tag", "Give the tag.")
        if scope == Subscription.Scope.CONFERENCES:
            text = cleaned.get("conference_ids", "")
            if not text.strip():
                self.add_error("conference_ids", "Give one or more conference ids.")
            else:
                cleaned["conference_ids"] = tracking.ID_SEPARATORS.split(text.strip())
        return cleaned

    def subscribe_arguments(self):
        """The service's arguments for the chosen scope (other scopes' fields ignored)."""
        data = self.cleaned_data
        arguments = {
            "email": data["email"].strip(),
            "secret": data["secret"],
            "kinds": data["kinds"],
            "time_zone": data["time_zone"],
            "members_at_most": data["members_at_most"],
            "members_above": data["members_above"],
            "rule_after": data["rule_after"],
            "drop_percent": data["drop_percent"],
            "expect": data["expect"],
            "grace": data["grace"],
            "notify_resolved": data["notify_resolved"],
            "quiet_hours": data["quiet_hours"],
            "quiet_drop": data["quiet_drop"],
        }
        if data["scope"] == Subscription.Scope.ACCOUNT:
            arguments["account"] = data["account"]
        elif data["scope"] == Subscription.Scope.TAG:
            arguments["tag"] = data["tag"]
        elif data["scope"] == Subscription.Scope.CONFERENCES:
            arguments.update(account=data["account"], conference_ids=data["conference_ids"])
        return arguments


class ExpiryField(forms.CharField):
    """An "Expires after" duration (30m, 2h, 3d), read by its service's clean_expiry:
    the acknowledge and share forms' one expiry field."""

    def __init__(self, *, read, placeholder, help_text):
        super().__init__(
            max_length=20,
            required=False,
            label="Expires after",
            widget=forms.TextInput(attrs={"placeholder": placeholder, "size": 14}),
            help_text=help_text,
        )
        self.read = read

    def clean(self, value):
        return self.read(super().clean(value))


class AcknowledgeForm(forms.Form):
    """Acknowledge a conference's alerts (from the email's link or the conference page)."""

    reason = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Reason (optional)"}),
    )
    expires = ExpiryField(
        read=acknowledgements.clean_expiry,
        placeholder="e.g. 2h",
        help_text="e.g. 30m or 2h; blank: until the conference's state changes.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "acknowledge-%s")  # unique beside the share form
        super().__init__(*args, **kwargs)

    def clean_reason(self):
        return acknowledgements.clean_reason(self.cleaned_data["reason"])


class ShareForm(forms.Form):
    expires = ExpiryField(
        read=sharing.clean_expiry,
        placeholder="7d",
        help_text="e.g. 2h or 3d (at most 31d); blank: 7 days.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "share-%s")  # unique beside the acknowledge form
        super().__init__(*args, **kwargs)


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = UserPreference
        fields = ["time_zone"]
        labels = {"time_zone": "Time zone"}
        help_texts = {"time_zone": "A name such as Europe/Berlin; blank: the site's."}
        widgets = {
            "time_zone": forms.TextInput(
                attrs={"list": "zone-names", "placeholder": "Europe/Berlin", "autocomplete": "off"}
            )
        }

    def clean_time_zone(self):
        return subscriptions.clean_time_zone(self.cleaned_data["time_zone"])
