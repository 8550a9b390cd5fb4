"""`{{ url|without_userinfo }}`: a URL from the API without its user name and password
(conferences.redact.without_userinfo). A builtin (TEMPLATES' "builtins" in
dashboard/settings.py), so every template has it without loading it."""

from django import template

from conferences import redact

register = template.Library()
register.filter("without_userinfo", redact.without_userinfo)
