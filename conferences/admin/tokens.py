"""API tokens (conferences/registry/tokens.py): create one (its text is shown once, on
the page that answers the form), see when each was last used, revoke them. No role's
group holds their permissions: superusers manage them. The hash is never shown."""

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from conferences.models import ApiToken
from conferences.registry import roles, tokens

SHOWN = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]


class ApiTokenCreateForm(forms.ModelForm):
    expires = forms.CharField(
        required=False,
        max_length=20,
        help_text=f"e.g. 90d or 12h (at most {tokens.LONGEST_EXPIRY_DAYS}d); blank: never.",
    )

    class Meta:
        model = ApiToken
        fields = ["name", "user"]

    def clean_expires(self):
        return tokens.clean_expiry(self.cleaned_data["expires"])

    def clean_user(self):
        return tokens.clean_user(self.cleaned_data["user"])


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = SHOWN
    list_select_related = ["user"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__username", "prefix"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["name", "user", "expires"] if obj is None else SHOWN

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else SHOWN

    def has_change_permission(self, request, obj=None):
        return False  # a token is made, used and revoked, never edited

    has_revoke_permission = roles.admin_permission("api_tokens.manage")  # the roles table

    def save_model(self, request, obj, form, change):
        request.api_token_text = tokens.issue(obj, expires_in=form.cleaned_data["expires"])
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        """The token, once: on this page, never in a message (stored in the session)."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "token": obj,
            "token_text": request.api_token_text,
            "title": f"API token {obj.name}",
        }
        response = TemplateResponse(request, "admin/conferences/apitoken/created.html", context)
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke the selected API tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        names = list(queryset.filter(revoked_at=None).values_list("name", flat=True))
        for name in names:
            tokens.revoke_token(name)
        self.message_user(request, f"Revoked {len(names)} API token(s).")
