"""Reports read from the event log itself, not from the read tables: so they answer
for any date, past or future, and `as_of` prints a report exactly as it would have
printed at that instant (only what had been recorded by then counts).

The gym's events of the types a report needs are found through the per-gym event
index (projections/event_log.py) and folded with the domain's own rules
(domain.membership.project and status_on), so a report and the membership's
status in the API can never disagree.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import anyio.to_thread
import msgspec
import psycopg

from domain import check_in, customer, membership
from domain.membership import Membership, Status
from domain.validation import local_day_bounds
from infra.db import EVENTS_TABLE
from projections.engine import Recorded
from projections.event_log import decoded

_TYPED_EVENTS_SQL = (
    "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state"  # noqa: S608
    f" FROM event_index i JOIN {EVENTS_TABLE} e ON e.notification_id = i.position"
    " WHERE i.gym_id = %(gym)s AND i.event_type = ANY(%(types)s::text[])"
    " AND (%(until)s::timestamptz IS NULL OR i.recorded_at <= %(until)s)"
    " AND (%(since)s::timestamptz IS NULL OR i.recorded_at >= %(since)s)"
    " ORDER BY i.position"
)

MEMBERSHIP_EVENTS = [cls.__name__ for cls in membership.EVENTS]
# The events that decide whether a customer may come in at all (the owner's switch).
CUSTOMER_ACCESS_EVENTS = [
    cls.__name__
    for cls in (
        customer.CustomerRegistered,
        customer.CustomerDeactivated,
        customer.CustomerReactivated,
        customer.CustomerRemoved,
    )
]


class MembershipReport(msgspec.Struct, frozen=True):
    on: date
    active: int
    frozen: int
    expired: int
    cancelled: int
    upcoming: int
    customers_with_access: int  # customers switched on, with an active membership on `on`
    as_of: datetime | None = None


class MovementsReport(msgspec.Struct, frozen=True):
    """What happened between `from_` and `to` (gym-local days, both included), by
    when it was recorded."""

    from_: date = msgspec.field(name="from")
    to: date = msgspec.field(name="to")
    sold: int = 0
    renewed: int = 0
    frozen: int = 0
    cancelled: int = 0
    expired: int = 0
    check_ins_allowed: int = 0
    check_ins_denied: int = 0


async def _events(
    conn: psycopg.AsyncConnection[Any],
    gym_id: UUID,
    types: list[str],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Recorded]:
    params = {"gym": gym_id, "types": types, "since": since, "until": until}
    cur = await conn.execute(_TYPED_EVENTS_SQL, params)
    return decoded(await cur.fetchall())


def memberships_from(events: Iterable[Recorded]) -> list[Membership]:
    """Each membership as its events (in log order) leave it."""
    states: dict[UUID, Membership | None] = {}
    for r in events:
        states[r.stream_id] = membership.evolve(states.get(r.stream_id), r.event)
    return [m for m in states.values() if m is not None]


def customers_switched_on(events: Iterable[Recorded]) -> tuple[set[UUID], set[UUID]]:
    """(customers present whose owner has not switched them off, customers removed)."""
    on: set[UUID] = set()
    removed: set[UUID] = set()
    for r in events:
        match r.event:
            case customer.CustomerRegistered(active=active):
                (on.add if active else on.discard)(r.stream_id)
            case customer.CustomerReactivated():
                on.add(r.stream_id)
            case customer.CustomerDeactivated():
                on.discard(r.stream_id)
            case customer.CustomerRemoved():
                on.discard(r.stream_id)
                removed.add(r.stream_id)
    return on, removed


def count_statuses(
    memberships: list[Membership], switched_on: set[UUID], on: date
) -> MembershipReport:
    statuses = {m.id: membership.status_on(m, on) for m in memberships}
    counts = Counter(statuses.values())
    with_access = {
        m.customer_id
        for m in memberships
        if statuses[m.id] is Status.ACTIVE and m.customer_id in switched_on
    }
    return MembershipReport(
        on=on,
        active=counts[Status.ACTIVE],
        frozen=counts[Status.FROZEN],
        expired=counts[Status.EXPIRED],
        cancelled=counts[Status.CANCELLED],
        upcoming=counts[Status.UPCOMING],
        customers_with_access=len(with_access),
    )


async def membership_report(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, on: date, as_of: datetime | None
) -> MembershipReport:
    """The gym's memberships by their status on `on`, as recorded by `as_of` (None:
    everything recorded so far)."""
    memberships = await _events(conn, gym_id, MEMBERSHIP_EVENTS, until=as_of)
    customers = await _events(conn, gym_id, CUSTOMER_ACCESS_EVENTS, until=as_of)

    def fold() -> MembershipReport:
        # A removed customer's memberships leave the gym with them, as on every route.
        switched_on, removed = customers_switched_on(customers)
        held = [m for m in memberships_from(memberships) if m.customer_id not in removed]
        return msgspec.structs.replace(count_statuses(held, switched_on, on), as_of=as_of)

    # Folding a large gym's events takes a while: off the event loop.
    return await anyio.to_thread.run_sync(fold)


_MOVEMENT_OF = {
    "MembershipSold": "sold",
    "MembershipRenewed": "renewed",
    "MembershipFrozen": "frozen",
    "MembershipCancelled": "cancelled",
    "MembershipTermExpired": "expired",
}


async def movements_report(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, first: date, last: date, timezone: str
) -> MovementsReport:
    first_bounds, last_bounds = local_day_bounds(first, timezone), local_day_bounds(last, timezone)
    if first_bounds is None or last_bounds is None:  # a day datetime cannot hold: nothing
        return MovementsReport(from_=first, to=last)
    since, until = first_bounds[0], last_bounds[1] - timedelta(microseconds=1)
    types = [*_MOVEMENT_OF, check_in.CheckInRecorded.__name__]
    counts: Counter[str] = Counter()
    for r in await _events(conn, gym_id, types, since=since, until=until):
        if isinstance(r.event, check_in.CheckInRecorded):
            counts["check_ins_allowed" if r.event.allowed else "check_ins_denied"] += 1
        else:
            counts[_MOVEMENT_OF[type(r.event).__name__]] += 1
    return MovementsReport(from_=first, to=last, **counts)
