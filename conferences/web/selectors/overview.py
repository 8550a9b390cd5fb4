"""The overview: every tracked conference at a glance, problems first.

What support staff ask of it, and where it is answered here:
- "what is wrong right now": `counts` (one aggregate query) and the default order
  (problems, then active ones by most recent change);
- "show me only ...": `filtered` applies the filter form (state, account, tag, polling
  health, hold, mute, paused, search) to a queryset;
- "has anything changed since my last look": `version` answers from the same single
  aggregate query (counts plus a digest of the filtered rows), before any row is loaded,
  so an unchanged live refresh is one query and a 204;
- "which account is short of budget": `account_strip`.

What "stale" means is defined once, in conferences/models/conference.py (stale_q).
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, time

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection
from django.db.models import (
    Count,
    F,
    IntegerField,
    Min,
    Q,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Lower, NullIf
from django.utils import timezone

from conferences.models import (
    BUDGET_SHARE,
    Account,
    Conference,
    ConferenceState,
    Member,
    PollStatus,
    held_present_q,
    polled_q,
    stale_q,
)

PAGE_SIZE = 50
FAILING = [
    PollStatus.CREDENTIALS_REJECTED,
    PollStatus.RATE_LIMITED,
    PollStatus.UNREACHABLE,
    PollStatus.CONFLICT,
    PollStatus.API_ERROR,
    PollStatus.MALFORMED,
    PollStatus.UNSTORABLE,
]

# What the rows show, hashed per row for `version` and summed (so the order of rows does
# not matter): change time, members, hold and mute folded into one bigint, plus the
# state, poll status and message, paused, label and tags. Cheap on purpose (no text built
# per row): 5,000 rows take a few milliseconds.
ROW_DIGEST = (
    "hashint8(id"
    " # coalesce((extract(epoch FROM last_changed_at) * 1000)::bigint, 0)"
    " # (coalesce(active_members, -1)::bigint << 42)"
    " # (coalesce(hold::int, 2)::bigint << 58)"
    " # (coalesce(mute::int, 2)::bigint << 61))::bigint"
    " + hashtext(coalesce(state, '-'))::bigint"
    " + hashtext(poll_status)::bigint * (1 + paused::int)"
    " + hashtext(poll_error)::bigint"
    " + hashtext(label)::bigint"
    " + hashtext(array_to_string(tags, ','))::bigint"
)


# Members on hold or muted (member-level, present), hashed and summed into the version:
# a member put on hold changes the overview's "1 member on hold" without changing the
# conference's row. Its condition is compiled from held_present_q, the condition of the
# partial index it reads (member_held_present_idx), so that the two stay the same.
MEMBERS_DIGEST = (
    "(SELECT coalesce(sum(hashint8(id::bigint # (coalesce(hold::int, 0)::bigint << 1)"
    " # (coalesce(mute::int, 0)::bigint << 2))::bigint), 0)"
    " FROM {table} WHERE {condition})"
)


def members_digest():
    """MEMBERS_DIGEST as SQL and parameters."""
    condition, params = where_sql(held_present_q(), model=Member)
    return MEMBERS_DIGEST.format(table=Member._meta.db_table, condition=condition), params


def problem_q(now):
    failing = Q(poll_status=PollStatus.NOT_FOUND) | Q(poll_status__in=FAILING)
    return (polled_q() & failing) | stale_q(now)


def start_of_today():
    """Midnight in the viewer's time zone (the one the middleware activated)."""
    today = timezone.localdate()
    return timezone.make_aware(datetime.combine(today, time.min))


def completed_today_q():
    """Completed since midnight (the API's completed time, else when we saw it change)."""
    start = start_of_today()
    return Q(state=ConferenceState.COMPLETED) & (
        Q(completed_time__gte=start) | Q(completed_time__isnull=True, last_changed_at__gte=start)
    )


# The counts at the top, each a quick filter: (name, label, the filter it links to).
COUNTS = [
    ("active", "active", "state=active"),
    ("created", "created", "state=created"),
    ("completed_today", "completed today", "state=completed_today"),
    ("not_found", "not found", "health=not_found"),
    ("failing", "failing", "health=failing"),
    ("stale", "stale", "health=stale"),
    ("paused", "paused", "tracking=paused"),
]


def count_conditions(now):
    """What each count counts, in SQL with its parameters: exactly the rows its quick
    filter shows (filter_q; tests/test_overview.py checks each count against its filter).
    Written out because the ORM takes longer to compile seven filters than Postgres
    takes to count them."""
    today = start_of_today()
    polled = "NOT paused AND (state IS NULL OR state <> 'completed')"
    failing = ", ".join(f"'{status}'" for status in FAILING)
    return {
        "active": ("NOT paused AND state = 'active'", []),
        "created": ("NOT paused AND state = 'created'", []),
        "completed_today": (
            "NOT paused AND state = 'completed' AND (completed_time >= %s"
            " OR (completed_time IS NULL AND last_changed_at >= %s))",
            [today, today],
        ),
        "not_found": (f"{polled} AND poll_status = 'not_found'", []),
        "failing": (f"{polled} AND poll_status IN ({failing})", []),
        "stale": where_sql(stale_q(now)),
        "paused": ("paused", []),
    }


def filter_q(data, *, now):
    """The filter form's cleaned data as one Q (so the same condition can filter rows and
    an aggregate)."""
    condition = Q()
    query = (data.get("q") or "").strip()
    if query:
        condition &= (
            Q(conference_id__icontains=query)
            | Q(label__icontains=query)
            | Q(tags__contains=[query.lower()])
            | Q(from_number__icontains=query)
        )
    state = data.get("state")
    if state == "pending":
        condition &= Q(state__isnull=True)
    elif state == "completed_today":
        condition &= completed_today_q()
    elif state:
        condition &= Q(state=state)
    if data.get("account"):
        condition &= Q(account=data["account"])
    tag = (data.get("tag") or "").strip().lower()
    if tag:
        condition &= Q(tags__contains=[tag])
    health = data.get("health")
    if health == "ok":
        condition &= Q(poll_status=PollStatus.OK) & ~stale_q(now)
    elif health == "problem":
        condition &= problem_q(now)
    elif health == "failing":  # completed ones are no longer polled: not failing
        condition &= polled_q() & Q(poll_status__in=FAILING)
    elif health == "not_found":
        condition &= polled_q() & Q(poll_status=PollStatus.NOT_FOUND)
    elif health == "stale":
        condition &= stale_q(now)
    elif health == "pending":
        condition &= Q(poll_status=PollStatus.PENDING)
    for name in ("hold", "mute"):
        if data.get(name) == "on":
            condition &= Q(**{name: True})
        elif data.get(name) == "off":
            condition &= Q(**{name: False})
    if data.get("tracking") == "paused":
        condition &= Q(paused=True)
    elif data.get("tracking") != "all":
        condition &= Q(paused=False)
    return condition


def rank(now):
    """0 problems, 1 active, 2 created, 3 not yet observed, 4 completed, 5 paused.
    In SQL, from the counts' conditions (compiling it from Q objects took longer than
    sorting by it)."""
    conditions = count_conditions(now)
    problems = [conditions[name] for name in ("not_found", "failing", "stale")]
    problem = " OR ".join(f"({sql})" for sql, _ in problems)
    params = [param for _, condition_params in problems for param in condition_params]
    return RawSQL(
        f"CASE WHEN paused THEN 5 WHEN {problem} THEN 0 WHEN state = 'active' THEN 1"
        " WHEN state = 'created' THEN 2 WHEN state IS NULL THEN 3 ELSE 4 END",
        params,
        output_field=IntegerField(),
    )


def ordering(sort, now):
    """ORDER BY for a sort key of the filter form; ties broken by id so pages are stable."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    changed = F("last_changed_at").desc(nulls_last=True)
    if key == "label":
        expression = Lower(Coalesce(NullIf("label", Value("")), "conference_id"))
        first = expression.desc() if descending else expression.asc()
        return [first, "pk"]
    if key == "members":
        members = F("active_members")
        first = members.desc(nulls_last=True) if descending else members.asc(nulls_last=True)
        return [first, changed, "pk"]
    if key == "changed":
        moment = F("last_changed_at")
        first = moment.asc(nulls_first=True) if descending else moment.desc(nulls_last=True)
        return [first, "pk"]
    if key == "state":
        state_rank = rank(now)
        first = state_rank.desc() if descending else state_rank.asc()
        return [first, F("state").asc(nulls_first=True), changed, "pk"]
    return [rank(now).asc(), changed, "pk"]


def filtered(data, *, now=None):
    now = now or timezone.now()
    return Conference.objects.filter(filter_q(data, now=now))


@dataclass
class Summary:
    """The one aggregate query of the overview: the counts at the top, and the filtered
    rows' number and digest."""

    counts: dict
    rows: int
    digest: int
    accounts: int  # 1, or 2 for "more than one"

    def version(self, *extra):
        text = repr((sorted(self.counts.items()), self.rows, self.digest, self.accounts, extra))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def where_sql(condition, *, model=Conference):
    """A Q on conferences (or `model`) as SQL and parameters (compiled by the ORM)."""
    query = model.objects.filter(condition).query
    try:
        sql, params = query.get_compiler(using=model.objects.db).compile(query.where)
    except FullResultSet:
        return "TRUE", []
    except EmptyResultSet:
        return "FALSE", []
    return sql, list(params)


def summarize(data, *, now):
    """One query: the counts, and the number and digest of the rows the filters keep
    (data None: a filter form with errors, which keeps nothing)."""
    conditions = count_conditions(now)
    kept, kept_params = where_sql(filter_q(data, now=now)) if data is not None else ("FALSE", [])
    columns, params = [], []
    for condition, condition_params in conditions.values():
        columns.append(f"count(*) FILTER (WHERE {condition})")
        params += condition_params
    columns.append(f"count(*) FILTER (WHERE {kept})")
    columns.append(f"sum({ROW_DIGEST}) FILTER (WHERE {kept})")
    params += kept_params * 2
    # More than one account? (min and max: no sort, unlike a distinct count)
    columns += ["min(account_id)", "max(account_id)"]
    digest_sql, digest_params = members_digest()
    columns.append(digest_sql)
    params += digest_params
    table = Conference._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table}", params)
        *numbers, rows, digest, first_account, last_account, members = cursor.fetchone()
    return Summary(
        counts=dict(zip(conditions, numbers, strict=True)),
        rows=rows,
        digest=(digest or 0) + (members or 0),
        accounts=1 if first_account == last_account else 2,
    )


def count_links(summary):
    return [
        {"name": name, "label": label, "count": summary.counts[name], "query": query}
        for name, label, query in COUNTS
    ]


def page_of_rows(data, *, now, page=1):
    """One page of the filtered conferences in the chosen order, with each one's rank,
    staleness, since when it is in its state, and its members on hold and muted.

    Three narrow queries: the ids of the page (sorting narrow rows), those rows in full,
    and their members' counts (grouping members, not the wide conference rows: under a
    busy hour's load that join took an eighth of the web's time)."""
    offset = (page - 1) * PAGE_SIZE
    ids = list(
        filtered(data, now=now)
        .order_by(*ordering(data.get("sort") or "", now))
        .values_list("pk", flat=True)[offset : offset + PAGE_SIZE]
    )
    by_id = (
        Conference.objects.select_related("account")
        .defer("account__api_token_encrypted", "account__api_secret_encrypted")
        .in_bulk(ids)
    )
    present = ~Q(state=ConferenceState.COMPLETED)
    members = {
        counts["conference_id"]: counts
        for counts in Member.objects.filter(conference_id__in=ids)
        .order_by()
        .values("conference_id")
        .annotate(
            on_hold=Count("pk", filter=Q(hold=True) & present),
            muted=Count("pk", filter=Q(mute=True) & present),
            seen=Count("pk"),
        )
    }
    rows = [by_id[pk] for pk in ids if pk in by_id]
    for row in rows:
        row.is_failing = row.poll_status in FAILING or row.poll_status == PollStatus.NOT_FOUND
        # Member-level hold and mute beside the conference's (text.hold_mute_text).
        counts = members.get(row.pk, {})
        row.members_on_hold = counts.get("on_hold", 0)
        row.members_muted = counts.get("muted", 0)
        row.members_seen = counts.get("seen", 0)
    return rows


def budget_use(budget, *, polled, active, interval):
    """How much of a (valid) budget polling `polled` conferences each interval needs, the
    members lists of the `active` ones included (one read each every
    CONFWATCH_MEMBERS_INTERVAL), and how often the conferences are really polled: the
    members reads get what the conference reads leave and at least CONFWATCH_MEMBERS_SHARE
    of the budget while they are due, as a round gives them (polling/claims.py)."""
    usable = budget * BUDGET_SHARE
    conference_reads = polled / interval
    members_reads = active / settings.CONFWATCH_MEMBERS_INTERVAL
    needed = conference_reads + members_reads
    members_taken = min(
        members_reads,
        max(settings.CONFWATCH_MEMBERS_SHARE * usable, usable - conference_reads),
    )
    left = usable - members_taken
    return {
        "budget": budget,
        "needed": needed,
        "share": round(100 * needed / usable),
        # With more conferences than the budget polls each interval, they are polled
        # less often: say how often they really are.
        "real_interval": max(interval, polled / left) if polled and left > 0 else interval,
        "over_budget": needed > usable,
    }


def account_strip():
    """Each account: its budget, the share of it polling every polled conference each
    interval needs, the interval that budget really allows, and its stalest active
    conference."""
    interval = settings.CONFWATCH_POLL_INTERVAL
    per_account = {
        row["account_id"]: row
        for row in Conference.objects.values("account_id")
        .order_by("account_id")
        .annotate(
            polled=Count("pk", filter=polled_q()),
            active=Count("pk", filter=Q(paused=False, state=ConferenceState.ACTIVE)),
            stalest=Min(
                Coalesce("last_observed_at", "tracked_at"),
                filter=Q(paused=False, state=ConferenceState.ACTIVE),
            ),
        )
    }
    strip = []
    for account in Account.objects.only("name", "request_budget", "base_url").order_by("name"):
        row = per_account.get(account.pk, {})
        polled, active, stalest = row.get("polled", 0), row.get("active", 0), row.get("stalest")
        item = {"account": account, "polled": polled, "stalest": stalest}
        # A stored budget or base URL no entry accepts any more is shown, never
        # computed with (a nan budget would break the page for everyone).
        item["misconfigured"] = account.settings_problems()
        if not item["misconfigured"]:
            item.update(
                budget_use(account.request_budget, polled=polled, active=active, interval=interval)
            )
        strip.append(item)
    return strip
