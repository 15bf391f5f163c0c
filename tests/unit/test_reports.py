"""The reports' rules on events folded in memory: a status count per day, who has
access, and the gym-local bounds of a window (projections/reports.py)."""

from datetime import UTC, date, datetime
from uuid import UUID, uuid4

from domain import customer, membership, plan
from domain.events import DomainEvent, EventMetadata, Stamp
from domain.terms import Term
from projections.engine import Recorded
from projections.reports import (
    count_statuses,
    customers_switched_on,
    memberships_from,
)

GYM = uuid4()
STAMP = Stamp(
    at=datetime(2026, 1, 1, tzinfo=UTC), metadata=EventMetadata(actor="o", correlation_id="r")
)
MONTHLY = plan.evolve(
    None,
    plan.create(
        uuid4(),
        GYM,
        plan.NewPlan(
            name="Monthly",
            price_cents=3000,
            currency="EUR",
            term=Term(months=1),
            max_freeze_days=14,
        ),
        STAMP,
    ),
)


def recorded(events: list[DomainEvent]) -> list[Recorded]:
    return [
        Recorded(i, e.originator_id, e.originator_version, type(e).__name__, b"", e)
        for i, e in enumerate(events, 1)
    ]


def sold(customer_id: UUID, starts_on: date) -> membership.Membership:
    event = membership.sell(uuid4(), customer_id, MONTHLY, starts_on, STAMP)
    return membership.evolve(None, event)


def test_each_membership_is_counted_by_its_status_on_the_day() -> None:
    alice, bob, carol = uuid4(), uuid4(), uuid4()
    active = sold(alice, date(2026, 1, 1))
    upcoming = sold(bob, date(2026, 2, 1))
    frozen_event = membership.freeze(
        sold(carol, date(2026, 1, 1)),
        membership.FreezeRequest(starts_on=date(2026, 1, 10), ends_on=date(2026, 1, 20)),
        STAMP,
    )
    frozen = membership.evolve(sold(carol, date(2026, 1, 1)), frozen_event)
    report = count_statuses([active, upcoming, frozen], {alice, bob, carol}, date(2026, 1, 15))
    assert (report.active, report.upcoming, report.frozen, report.expired) == (1, 1, 1, 0)
    assert report.customers_with_access == 1
    later = count_statuses([active, upcoming, frozen], {alice, bob, carol}, date(2026, 2, 5))
    # alice ended on Jan 31; the freeze moved carol's end to Feb 11; bob started Feb 1.
    assert (later.active, later.expired) == (2, 1)
    assert count_statuses([active], {alice}, date(2026, 3, 1)).expired == 1


def test_a_switched_off_customer_has_no_access_with_an_active_membership() -> None:
    alice = uuid4()
    report = count_statuses([sold(alice, date(2026, 1, 1))], set(), date(2026, 1, 2))
    assert (report.active, report.customers_with_access) == (1, 0)


def test_two_active_memberships_of_one_customer_are_one_customer_with_access() -> None:
    alice = uuid4()
    both = [sold(alice, date(2026, 1, 1)), sold(alice, date(2026, 1, 5))]
    assert count_statuses(both, {alice}, date(2026, 1, 10)).customers_with_access == 1


def test_memberships_are_folded_per_stream_in_log_order() -> None:
    start = sold(uuid4(), date(2026, 3, 1))
    sale = membership.sell(start.id, start.customer_id, MONTHLY, date(2026, 3, 1), STAMP)
    renewal = membership.renew(membership.evolve(None, sale), MONTHLY, STAMP)
    [folded] = memberships_from(recorded([sale, renewal]))
    assert (folded.starts_on, folded.ends_on, folded.term_number) == (
        date(2026, 3, 1),
        date(2026, 4, 30),
        2,
    )


def test_the_owners_switch_and_removal_decide_who_is_switched_on() -> None:
    ids = [uuid4() for _ in range(3)]
    new = customer.NewCustomer(first_name="A", last_name="B", email="a@example.com")
    events: list[DomainEvent] = [
        customer.register(i, GYM, new, today=date(2026, 1, 1), stamp=STAMP) for i in ids
    ]
    events += [
        customer.CustomerDeactivated(
            originator_id=ids[0],
            originator_version=2,
            timestamp=STAMP.at,
            metadata=STAMP.metadata,
            gym_id=GYM,
        ),
        customer.CustomerRemoved(
            originator_id=ids[1],
            originator_version=2,
            timestamp=STAMP.at,
            metadata=STAMP.metadata,
            gym_id=GYM,
        ),
        customer.CustomerDeactivated(
            originator_id=ids[2],
            originator_version=2,
            timestamp=STAMP.at,
            metadata=STAMP.metadata,
            gym_id=GYM,
        ),
        customer.CustomerReactivated(
            originator_id=ids[2],
            originator_version=3,
            timestamp=STAMP.at,
            metadata=STAMP.metadata,
            gym_id=GYM,
        ),
    ]
    assert customers_switched_on(recorded(events)) == ({ids[2]}, {ids[1]})
