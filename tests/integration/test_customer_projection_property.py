"""Property: however a customer's events fall into batches, the customers table
equals replaying each customer's stream (the domain's own fold).

The projection keeps customers registered in a batch in memory and applies later
events of the same batch to them there; one event per batch takes the SQL path
for everything. Both must give the replayed state.
"""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.application import GymLedger
from domain import customer
from domain import gym as gyms
from domain.errors import DomainError
from domain.events import DomainEvent, EventMetadata, Stamp
from infra.event_codec import CODEC
from projections import engine
from projections.customers import CustomersProjection
from projections.engine import Projector
from projections.rebuild import create_scratch
from tests.factories import gym_registered
from tests.integration.helpers import head_position

TODAY = date(2030, 6, 1)
START = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
COLUMNS = (
    "id, gym_id, version, first_name, last_name, email, phone, date_of_birth,"
    " membership_start, membership_end, notes, owner_active, expired_end,"
    " created_at, updated_at"
)

ends = st.none() | st.dates(date(2030, 1, 1), date(2030, 12, 31))
details = st.builds(
    customer.CustomerDetails,
    first_name=st.just(msgspec.UNSET) | st.sampled_from(["Ada", "Bo", "Cy"]),
    notes=st.just(msgspec.UNSET) | st.none() | st.sampled_from(["vip", "new"]),
    membership_end=st.just(msgspec.UNSET) | ends,
)
operation = st.one_of(
    st.tuples(st.just("register"), st.integers(0, 2), ends),
    st.tuples(st.just("change"), st.integers(0, 2), details),
    st.tuples(st.just("switch"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("expire"), st.integers(0, 2), st.none()),
    st.tuples(st.just("remove"), st.integers(0, 2), st.none()),
)


def _events(
    gym_id: uuid.UUID, operations: list[tuple[str, int, Any]], close: bool
) -> list[DomainEvent]:
    """Valid domain events for the operations (an operation on a customer not yet
    registered registers them; ones the domain refuses are skipped), then maybe
    the gym's closing."""
    meta = EventMetadata(actor="test", correlation_id="property")
    registered = gym_registered(gym_id, Stamp(at=START, metadata=meta), f"{gym_id.hex}@x.org")
    the_gym = gyms.evolve(None, registered)
    people: dict[int, customer.Customer] = {}
    out: list[DomainEvent] = [registered]
    for step, (kind, who, arg) in enumerate(operations):
        stamp = Stamp(at=START + timedelta(seconds=step), metadata=meta)
        current = people.get(who)
        new: list[DomainEvent]
        try:
            if current is None:
                end = arg if kind == "register" else None
                full = customer.NewCustomer(
                    first_name="Eve", last_name=f"N{who}", email=f"c{who}@x.org", membership_end=end
                )
                new = [customer.register(uuid.uuid4(), gym_id, full, today=TODAY, stamp=stamp)]
            elif kind == "change" and current is not None:
                new = customer.change(current, arg, today=TODAY, stamp=stamp)
            elif kind == "switch" and current is not None:
                switch = customer.CustomerDetails(active=arg)
                new = customer.change(current, switch, today=TODAY, stamp=stamp)
            elif kind == "expire" and current is not None:
                expired = customer.expire_membership(current, TODAY + timedelta(400), stamp)
                new = [expired] if expired is not None else []
            elif kind == "remove" and current is not None:
                new = [customer.remove(current, stamp)]
            else:
                continue
        except DomainError:
            continue
        for event in new:
            if isinstance(event, customer.CustomerEvent):
                people[who] = customer.evolve(current, event)
                current = people[who]
        out.extend(new)
    if close:  # commands refuse everything else for a closed gym, so it comes last
        out.append(gyms.close(the_gym, Stamp(at=START + timedelta(days=1), metadata=meta)))
    return out


def _replayed(events: list[DomainEvent]) -> set[tuple[Any, ...]]:
    if any(isinstance(e, gyms.GymClosed) for e in events):
        return set()  # closing a gym removes its customers from the read side
    streams: dict[uuid.UUID, list[DomainEvent]] = {}
    for event in events:
        if isinstance(event, customer.CustomerEvent):
            streams.setdefault(event.originator_id, []).append(event)
    rows = set()
    for stream in streams.values():
        c = customer.project(None, stream)
        if c is not None and not c.removed:
            rows.add(tuple(getattr(c, column.strip()) for column in COLUMNS.split(",")))
    return rows


def _projected(database_url: str, start: int, gym_id: uuid.UUID, batch: int) -> set[Any]:
    """Project the log after `start` into a scratch customers table, then roll back."""
    schema = f"prop_{uuid.uuid4().hex[:10]}"
    projector = Projector(f"prop-{schema}", [CustomersProjection()], CODEC, batch_size=batch)
    with psycopg.connect(database_url) as conn, conn.transaction(force_rollback=True):
        create_scratch(conn, schema, projector.projections)  # only `schema` on the path
        conn.execute(
            "INSERT INTO projector_positions (name, position) VALUES (%s, %s)",
            (projector.name, start),
        )
        with conn.transaction():  # the projector's own transactions nest as savepoints
            projector.catch_up(conn)
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM customers WHERE gym_id = %s",  # noqa: S608 (constant)
            (gym_id,),
        ).fetchall()
    return set(rows)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=st.lists(operation, min_size=1, max_size=14), close=st.booleans())
def test_any_batching_equals_replay(
    ledger: GymLedger, settings: Any, operations: list[tuple[str, int, Any]], close: bool
) -> None:
    gym_id = uuid.uuid4()
    events = _events(gym_id, operations, close)
    start = head_position(settings.database_url)
    if events:
        ledger.append(*events)
    expected = _replayed(events)
    # Batches of one, three and all events; the last also with COPY instead of the
    # pipelined INSERTs a small batch writes with (projections/engine.py).
    for batch, pipelined_up_to in ((1, 50), (3, 50), (500, 50), (500, 0)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(engine, "PIPELINED_WRITES_UP_TO", pipelined_up_to)
            found = _projected(settings.database_url, start, gym_id, batch)
        assert found == expected, (batch, pipelined_up_to)
