"""Maintenance windows (alerting/maintenance.py): add, edit, end them."""

from django import forms
from django.contrib import admin

from conferences.alerting import maintenance
from conferences.models import MaintenanceWindow
from conferences.registry import roles

LOCAL_HELP = 'Local time in the time zone, "YYYY-MM-DD HH:MM".'


class MaintenanceWindowForm(forms.ModelForm):
    """From and until as local times in the window's zone, checked as the `maintenance`
    command checks them."""

    starts = forms.CharField(label="From", help_text=LOCAL_HELP)
    until = forms.CharField(label="Until", help_text=LOCAL_HELP)

    class Meta:
        model = MaintenanceWindow
        fields = ["account", "tag", "conferences", "weekly", "time_zone", "reason"]
        help_texts = {
            "account": "Cover exactly one of: an account, a tag, or chosen conferences.",
            "time_zone": "e.g. Europe/Berlin; blank: the site's.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "time_zone" in self.fields:  # a viewer's read-only form has no fields
            self.fields["time_zone"].required = False
        window = self.instance
        if window.pk is not None:
            zone = maintenance.zone_of(window)
            self.initial["starts"] = window.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            self.initial["until"] = window.ends_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def clean_reason(self):
        return maintenance.clean_reason(self.cleaned_data["reason"])

    def clean(self):
        cleaned = super().clean()
        chosen = [
            cleaned.get("account") is not None,
            bool((cleaned.get("tag") or "").strip()),
            bool(cleaned.get("conferences")),
        ]
        if sum(chosen) != 1:
            self.add_error(
                "account", "Cover exactly one of: an account, a tag, or chosen conferences."
            )
        if cleaned.get("starts") and cleaned.get("until"):
            try:
                zone, starts_at, ends_at = maintenance.clean_times(
                    cleaned["starts"],
                    cleaned["until"],
                    weekly=cleaned.get("weekly", False),
                    time_zone=cleaned.get("time_zone", ""),
                )
            except forms.ValidationError as error:
                self.add_error("until", error)
            else:
                cleaned["time_zone"] = zone.key
                self.instance.starts_at, self.instance.ends_at = starts_at, ends_at
        return cleaned


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    form = MaintenanceWindowForm
    list_display = ["pk", "scope", "starts_at", "ends_at", "weekly", "time_zone", "reason"]
    list_display += ["ended_at"]
    list_filter = ["weekly"]
    search_fields = ["tag", "reason", "account__name"]
    list_select_related = ["account"]
    autocomplete_fields = ["account", "conferences"]
    readonly_fields = ["starts_at", "ends_at", "ended_at", "created_by", "created_at"]
    actions = ["end_now"]
    has_manage_permission = roles.admin_permission("maintenance.manage")  # the roles table

    @admin.display(description="covers")
    def scope(self, obj):
        return obj.describe_scope()

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()[:150]
        super().save_model(request, obj, form, change)
        if change:
            maintenance.reschedule_summaries(obj)

    @admin.action(description="End the selected windows now", permissions=["manage"])
    def end_now(self, request, queryset):
        ended = sum(1 for window in queryset if maintenance.end_window(window))
        self.message_user(request, f"Ended {ended} maintenance window(s).")
