"""Everyone's alert subscriptions (each user manages their own on the Alerts page)."""

from django import forms
from django.contrib import admin

from conferences import subscriptions
from conferences.models import Subscription


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

    def get_readonly_fields(self, request, obj=None):
        # Choosing the user means searching the users, which support roles may not see:
        # they manage subscriptions by email, superusers can also set the user.
        if not request.user.has_perm("auth.view_user"):
            return ["user"]
        return []
