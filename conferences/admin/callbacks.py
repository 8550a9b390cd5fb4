"""Members and callback events: records, read-only for everyone (the account page shows
each account's callback URL and last event, conferences/admin/accounts.py)."""

from django.contrib import admin

from conferences.admin.common import CappedCountPaginator
from conferences.models import CallbackEvent, Member


class ReadOnly(admin.ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Member)
class MemberAdmin(ReadOnly):
    list_display = ["call_id", "member_id", "conference", "state", "joined_at", "left_at"]
    list_select_related = ["conference"]
    # Exact ids: the call id index serves it.
    search_fields = ["=call_id", "=member_id", "=conference__conference_id"]
    ordering = ["-id"]


@admin.register(CallbackEvent)
class CallbackEventAdmin(ReadOnly):
    list_display = ["received_at", "account", "event_type", "conference_id", "result"]
    list_select_related = ["account"]
    list_filter = ["event_type"]
    search_fields = ["=conference_id"]
    ordering = ["-id"]
