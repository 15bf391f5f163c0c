"""Time travel of a stream: an aggregate as it was at a past moment or version.

The write side owns how a stream folds into an aggregate (domain/*.project), so the
past state is rebuilt here and not in a route. The events come from the read pool,
straight from the log with tenant scoping (projections/event_log.customer_stream and
its siblings): another gym's customer, plan or membership, or a stream of another
kind, has no past at all.
"""

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import psycopg

from domain import customer, membership, plan
from domain.events import DomainEvent
from projections.engine import Recorded
from projections.event_log import customer_stream, membership_stream, plan_stream
from projections.memberships import customer_memberships


class CustomerThen(NamedTuple):
    customer: customer.Customer
    # When the last event folded in was recorded: the customer's "then" when only a
    # version was asked for (updated_at is not it: an expiry does not touch it).
    recorded_at: datetime


async def customer_as_of(
    conn: psycopg.AsyncConnection[Any],
    gym_id: UUID,
    customer_id: UUID,
    *,
    moment: datetime | None,
    version: int | None,
) -> CustomerThen | None:
    """The customer of `gym_id` folded from its events up to `version` and recorded
    at or before `moment` (either may be None: no bound). None when the customer did
    not exist then, had been removed by then, or is not `gym_id`'s."""
    stream = await customer_stream(conn, gym_id, customer_id)
    events = [
        item.event
        for item in stream
        if (version is None or item.event.originator_version <= version)
        and (moment is None or item.event.timestamp <= moment)
    ]
    then = customer.project(None, events)
    if then is None or then.removed:
        return None
    return CustomerThen(then, events[-1].timestamp)


def _until(
    stream: list[Recorded], moment: datetime | None, version: int | None
) -> list[DomainEvent]:
    """The stream's events up to `version` and recorded at or before `moment`."""
    return [
        item.event
        for item in stream
        if (version is None or item.event.originator_version <= version)
        and (moment is None or item.event.timestamp <= moment)
    ]


class MembershipThen(NamedTuple):
    membership: membership.Membership
    recorded_at: datetime  # of the last event folded in (see CustomerThen)


async def plan_as_of(
    conn: psycopg.AsyncConnection[Any],
    gym_id: UUID,
    plan_id: UUID,
    *,
    moment: datetime | None,
    version: int | None,
) -> plan.Plan | None:
    """The plan of `gym_id` as it was (see customer_as_of); None before it existed."""
    events = _until(await plan_stream(conn, gym_id, plan_id), moment, version)
    return plan.project(None, events)


async def membership_as_of(
    conn: psycopg.AsyncConnection[Any],
    gym_id: UUID,
    membership_id: UUID,
    *,
    moment: datetime | None,
    version: int | None,
) -> MembershipThen | None:
    """The membership of `gym_id` as it was (see customer_as_of); None before its sale."""
    events = _until(await membership_stream(conn, gym_id, membership_id), moment, version)
    then = membership.project(None, events)
    return None if then is None else MembershipThen(then, events[-1].timestamp)


async def customer_memberships_as_of(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, customer_id: UUID, moment: datetime
) -> list[membership.Membership]:
    """The customer's memberships as they were at `moment`: those the read model holds
    now (a membership never changes hands), each folded from its events up to then."""
    then = []
    for held in await customer_memberships(conn, gym_id, customer_id):
        if held.created_at <= moment:
            found = await membership_as_of(conn, gym_id, held.id, moment=moment, version=None)
            if found is not None:
                then.append(found.membership)
    return then
