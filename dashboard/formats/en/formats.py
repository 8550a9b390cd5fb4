"""Dates and times as Django writes them by itself (the admin's lists and read-only
fields, a datetime put straight into a template): as conferences/text.py's local_text
does, with the zone, `2026-11-28 19:23:31 CET`. FORMAT_MODULE_PATH (settings) points
here; what is not set here stays Django's English."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
