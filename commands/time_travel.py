"""Time travel of a stream: an aggregate as it was at a past moment or version.

The write side owns how a stream folds into an aggregate (domain/*.project), so the
past state is rebuilt here and not in a route. The events come from the read pool,
straight from the log with tenant scoping (projections/event_log.customer_stream):
another gym's customer, or a stream that is no customer, has no past at all.
"""

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import psycopg

from domain import customer
from projections.event_log import customer_stream


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
