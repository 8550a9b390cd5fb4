from django import forms
from django.core.exceptions import ValidationError

from conferences import tracking
from conferences.models import Account, ConferenceState


class TrackForm(forms.Form):
    account = forms.ModelChoiceField(queryset=Account.objects.order_by("name"), empty_label=None)
    conference_ids = forms.CharField(
        label="Conference ids",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "conf-abc123, conf-def456"}),
        help_text="One or more Catapult conference ids, separated by spaces or commas.",
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


class FilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    state = forms.ChoiceField(
        required=False,
        choices=[("", "any state"), ("pending", "not yet observed")]
        + list(ConferenceState.choices),
    )
    account = forms.ModelChoiceField(
        queryset=Account.objects.order_by("name"), required=False, empty_label="any account"
    )
    tracking = forms.ChoiceField(
        required=False,
        choices=[("", "tracked"), ("paused", "paused"), ("all", "tracked and paused")],
    )
