"""The admin: how support staff find a conference, manage tracking and accounts, and read
the records of what happened.

Who may do what is Django's permissions, held by the two groups of conferences/registry/roles.py.
Records (history, status changes, poll errors, events, alert deliveries) are read-only
for everyone. Big tables are never counted in full (common.CappedCountPaginator) and
their filters offer fixed choices instead of `SELECT DISTINCT` over the table. Every
change made here, including the actions, is in Django's admin log under the user who
made it.

One module per role: common (shared pieces), conference, accounts, records, callbacks,
subscriptions, maintenance, tokens; importing them registers their model admins.
"""

from django.contrib import admin

from conferences.admin import (  # noqa: F401
    accounts,
    callbacks,
    conference,
    maintenance,
    records,
    subscriptions,
    tokens,
)

# The navigation sidebar takes a quarter of a 1,366 px screen from the lists; the
# breadcrumbs and the index page lead everywhere it does.
admin.site.enable_nav_sidebar = False
