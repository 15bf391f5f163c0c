"""commands/time_travel: a customer as they were, straight from the log, one gym's only."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from commands.application import GymLedger
from commands.context import CommandContext
from commands.customers import (
    ChangeCustomer,
    RegisterCustomer,
    RemoveCustomer,
    change_customer,
    register_customer,
    remove_customer,
)
from commands.time_travel import CustomerThen, customer_as_of
from domain.customer import CustomerDetails, NewCustomer
from infra.clock import ManualClock
from tests.conftest import unique_email
from tests.integration.helpers import register

START = datetime(2026, 3, 1, 9, tzinfo=UTC)


def as_of(settings: Any, gym_id: UUID, customer_id: UUID, **when: Any) -> CustomerThen | None:
    async def read() -> CustomerThen | None:
        async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
            return await customer_as_of(conn, gym_id, customer_id, **when)

    return asyncio.run(read())


def last_name(then: CustomerThen | None) -> str | None:
    return None if then is None else then.customer.last_name


def test_a_past_version_and_moment_and_nothing_for_another_gym(
    ledger: GymLedger, settings: Any
) -> None:
    gym_id, other_gym = register(ledger).id, register(ledger).id
    clock = ManualClock(START)
    ctx = CommandContext(actor="t", correlation_id="c", clock=clock)
    details = NewCustomer(first_name="Ann", last_name="Old", email=unique_email("c"))
    customer_id = register_customer(
        ledger, RegisterCustomer(gym_id=gym_id, details=details), ctx
    ).id
    clock.set(START + timedelta(days=1))
    renamed = CustomerDetails(last_name="New")
    change = ChangeCustomer(gym_id=gym_id, customer_id=customer_id, details=renamed)
    change_customer(ledger, change, ctx)

    first = as_of(settings, gym_id, customer_id, moment=None, version=1)
    assert first is not None
    assert (first.customer.version, first.customer.last_name) == (1, "Old")
    assert first.recorded_at == START
    an_hour_in = START + timedelta(hours=1)
    assert last_name(as_of(settings, gym_id, customer_id, moment=an_hour_in, version=None)) == "Old"
    assert last_name(as_of(settings, gym_id, customer_id, moment=None, version=None)) == "New"
    # Before registration: no customer yet. Another gym: no such customer at all.
    assert as_of(settings, gym_id, customer_id, moment=START - timedelta(1), version=None) is None
    assert as_of(settings, other_gym, customer_id, moment=None, version=None) is None
    # A stream that is no customer (the gym's own) is none either.
    assert as_of(settings, gym_id, gym_id, moment=None, version=None) is None

    clock.set(START + timedelta(days=2))
    remove_customer(ledger, RemoveCustomer(gym_id=gym_id, customer_id=customer_id), ctx)
    assert as_of(settings, gym_id, customer_id, moment=None, version=None) is None
    assert last_name(as_of(settings, gym_id, customer_id, moment=None, version=2)) == "New"
