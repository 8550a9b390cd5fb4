"""The conference page's acknowledgement and share-link panels, each one line to add:
`{% load conference_panels %}{% acknowledge_panel conference %}{% share_panel conference %}`.
"""

from django import template

from conferences.alerting import acknowledgements, sharing
from conferences.web.forms import AcknowledgeForm, ShareForm

register = template.Library()


@register.inclusion_tag("conferences/_acknowledge.html", takes_context=True)
def acknowledge_panel(context, conference):
    return {
        "conference": conference,
        "acknowledgements": acknowledgements.for_conference(conference),
        "can_acknowledge": context.get("can_acknowledge"),  # the view's check
        # A refused form comes back as typed, with its errors (views.conference.refuse_form).
        "form": context.get("acknowledge_form") or AcknowledgeForm(),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("conferences/_share.html", takes_context=True)
def share_panel(context, conference):
    return {
        "conference": conference,
        "links": sharing.links_of(conference),
        "form": context.get("share_form") or ShareForm(),
        "csrf_token": context.get("csrf_token"),
    }
