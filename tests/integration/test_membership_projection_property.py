"""Properties of the memberships read model, on real PostgreSQL:

- however the events fall into batches, `memberships_of` gives exactly the states the
  domain's own fold gives (newest sale first), and a removed customer has none;
- the SQL twin of status_on (the gym list's `status=` filter) agrees with it on every
  day tried;
- the customers list's `active=` filter agrees with what the customer response shows
  (domain.membership.shown_on_customer, or the legacy dates without memberships).
"""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.schemas import CustomerResponse
from commands.application import GymLedger
from domain import customer, membership, plan
from domain.errors import DomainError
from domain.events import DomainEvent, EventMetadata, Stamp
from domain.membership import CancelRequest, FreezeRequest, Status, UnfreezeRequest, status_on
from domain.terms import Term
from infra.event_codec import CODEC
from projections import customers as customer_queries
from projections import engine
from projections import memberships as membership_queries
from projections.customers import CustomerFilter, CustomersProjection
from projections.engine import Projector
from projections.memberships import MembershipFilter, MembershipsProjection, memberships_of
from projections.rebuild import create_scratch
from tests.factories import gym_registered
from tests.integration.helpers import head_position

START = datetime(2026, 1, 1, 9, tzinfo=UTC)
META = EventMetadata(actor="test", correlation_id="property")
FIRST_DAY = date(2026, 2, 1)
DAYS = [FIRST_DAY + timedelta(days=n) for n in (-40, -1, 0, 3, 9, 20, 31, 45, 70, 120)]

operation = st.one_of(
    st.tuples(st.just("sell"), st.integers(0, 2), st.integers(-30, 30), st.integers(0, 1)),
    st.tuples(st.just("freeze"), st.integers(0, 3), st.integers(-5, 60), st.integers(0, 9)),
    st.tuples(st.just("unfreeze"), st.integers(0, 3), st.integers(-5, 60), st.just(0)),
    st.tuples(st.just("renew"), st.integers(0, 3), st.just(0), st.just(0)),
    st.tuples(st.just("cancel"), st.integers(0, 3), st.integers(-40, 60), st.just(0)),
    st.tuples(st.just("switch_off"), st.integers(0, 2), st.just(0), st.just(0)),
    st.tuples(st.just("remove"), st.integers(0, 2), st.just(0), st.just(0)),
)


class Gym:
    """A gym built from domain events only: three customers (one with legacy dates),
    two plans, and whatever the operations sell and do."""

    def __init__(self) -> None:
        self.id = uuid.uuid4()
        self.step = 0
        self.events: list[DomainEvent] = [
            gym_registered(self.id, self.stamp(), f"{self.id.hex}@x.org")
        ]
        self.people: dict[int, customer.Customer] = {}
        for who in range(3):
            legacy = FIRST_DAY + timedelta(days=10) if who == 2 else None
            new = customer.NewCustomer(
                first_name="Eve", last_name=f"N{who}", email=f"c{who}@x.org", membership_end=legacy
            )
            self.record(
                customer.register(uuid.uuid4(), self.id, new, today=FIRST_DAY, stamp=self.stamp())
            )
        self.plans = []
        for term in (Term(months=1), Term(days=10)):
            new_plan = plan.NewPlan(
                name="P", price_cents=100, currency="EUR", term=term, max_freeze_days=7
            )
            created = plan.create(uuid.uuid4(), self.id, new_plan, self.stamp())
            self.events.append(created)
            self.plans.append(plan.evolve(None, created))
        self.held: list[membership.Membership] = []

    def stamp(self) -> Stamp:
        self.step += 1
        return Stamp(at=START + timedelta(seconds=self.step), metadata=META)

    def record(self, event: DomainEvent) -> None:
        self.events.append(event)
        if isinstance(event, customer.CustomerEvent):
            who = next((k for k, c in self.people.items() if c.id == event.originator_id), None)
            state = customer.evolve(None if who is None else self.people[who], event)
            self.people[len(self.people) if who is None else who] = state

    def apply(self, kind: str, which: int, offset: int, extra: int) -> None:
        day = FIRST_DAY + timedelta(days=offset)
        stamp = self.stamp()
        if kind in ("sell", "switch_off", "remove"):
            person = self.people[which]
            if person.removed:
                return
            if kind == "sell":
                sold = membership.sell(uuid.uuid4(), person.id, self.plans[extra], day, stamp)
                self.events.append(sold)
                self.held.append(membership.evolve(None, sold))
            elif kind == "switch_off":
                off = customer.CustomerDetails(active=False)
                for switched in customer.change(person, off, today=FIRST_DAY, stamp=stamp):
                    self.record(switched)
            else:
                self.record(customer.remove(person, stamp))
            return
        if which >= len(self.held):
            return
        m = self.held[which]
        event: DomainEvent
        if kind == "freeze":
            request = FreezeRequest(starts_on=day, ends_on=day + timedelta(days=extra))
            event = membership.freeze(m, request, stamp)
        elif kind == "unfreeze":
            event = membership.unfreeze(m, UnfreezeRequest(on=day), stamp)
        elif kind == "renew":
            event = membership.renew(m, self.plans[0], stamp)
        else:
            event = membership.cancel(m, CancelRequest(effective_on=day), stamp)
        self.events.append(event)
        self.held[which] = membership.evolve(m, event)


def _boundaries(held: list[membership.Membership]) -> list[date]:
    """Every day a status may change on, and the day before it: where a twin differs."""
    days = set(DAYS)
    one = timedelta(days=1)
    for m in held:
        edges = [m.starts_on, m.ends_on + one, *([m.cancelled_on] if m.cancelled_on else [])]
        edges += [day for f in m.freezes for day in (f.starts_on, f.ends_on + one)]
        days.update(day for edge in edges for day in (edge - one, edge))
    return sorted(days)


def _read(
    database_url: str, span: tuple[int, int], gym: Gym, batch: int, days: list[date]
) -> dict[str, Any]:
    """Project the log's positions in `span` (after the first, up to the second) into
    scratch tables and read them, then roll back. Bounded: the session's scheduler
    records expiries of these memberships in the live log soon after."""
    start, end = span
    schema = f"prop_{uuid.uuid4().hex[:10]}"
    projections = [CustomersProjection(), MembershipsProjection()]
    projector = Projector(f"prop-{schema}", projections, CODEC, batch_size=batch)
    projector.until = end
    found: dict[str, Any] = {"held": {}, "status": {}, "active": {}}
    with psycopg.connect(database_url) as conn, conn.transaction(force_rollback=True):
        create_scratch(conn, schema, projector.projections)
        conn.execute(
            "INSERT INTO projector_positions (name, position) VALUES (%s, %s)",
            (projector.name, start),
        )
        with conn.transaction():
            projector.catch_up(conn)
        with conn.cursor() as cur:
            for person in gym.people.values():
                found["held"][person.id] = memberships_of(cur, gym.id, person.id)
            for day in days:
                for status in Status:
                    query = MembershipFilter(status=status, limit=1000)
                    cur.execute(*membership_queries.list_query(gym.id, query, day))
                    found["status"][day, status] = {row[0] for row in cur.fetchall()}
                listed = CustomerFilter(active=True, limit=1000)
                cur.execute(*customer_queries.list_query(gym.id, listed, day))
                found["active"][day] = {row[0] for row in cur.fetchall()}
    return found


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=st.lists(operation, max_size=16))
def test_the_read_model_equals_replay_and_its_sql_agrees_with_the_domain(
    ledger: GymLedger, settings: Any, operations: list[tuple[str, int, int, int]]
) -> None:
    gym = Gym()
    for op in operations:
        try:
            gym.apply(*op)
        except DomainError:
            continue  # refused: nothing recorded
    start = head_position(settings.database_url)
    end = ledger.append(*gym.events)
    present = {p.id for p in gym.people.values() if not p.removed}
    replayed = {
        person.id: sorted(
            (m for m in gym.held if m.customer_id == person.id and person.id in present),
            key=lambda m: (m.created_at, m.id),
            reverse=True,
        )
        for person in gym.people.values()
    }
    days = _boundaries(gym.held)
    for batch, pipelined_up_to in ((1, 50), (500, 0)):  # the second COPYs its rows
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(engine, "PIPELINED_WRITES_UP_TO", pipelined_up_to)
            found = _read(settings.database_url, (start, end), gym, batch, days)
        assert found["held"] == replayed, batch
    for day in days:
        shown = [m for m in gym.held if m.customer_id in present]
        for status in Status:
            expected = {m.id for m in shown if status_on(m, day) is status}
            assert found["status"][day, status] == expected, (day, status)
        active = set()
        for person in gym.people.values():
            if person.id in present:
                row = customer_queries.row_of(person)
                if CustomerResponse.of(row, day, replayed[person.id]).active:
                    active.add(person.id)
        assert found["active"][day] == active, day
