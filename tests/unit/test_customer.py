"""The Customer aggregate's rules, without any I/O."""

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import customer
from domain.customer import CustomerDetails, NewCustomer
from domain.errors import DomainError, InvalidValue, NotFound
from domain.events import DomainEvent, EventMetadata, Stamp
from infra.event_codec import CODEC

TODAY = date(2026, 6, 15)
T0 = datetime(2026, 6, 15, 9, tzinfo=UTC)
STAMP = Stamp(at=T0, metadata=EventMetadata(actor="gym", correlation_id="req"))
BASE = NewCustomer(first_name=" Ann ", last_name="Lee", email="Ann@Example.com")


def new(details: NewCustomer = BASE, active: bool = True) -> customer.Customer:
    details = msgspec.structs.replace(details, active=active)
    event = customer.register(uuid4(), uuid4(), details, today=TODAY, stamp=STAMP)
    return customer.evolve(None, event)


def test_register_normalises_and_defaults() -> None:
    c = new()
    assert (c.first_name, c.email, c.phone, c.owner_active) == (
        "Ann",
        "ann@example.com",
        None,
        True,
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"first_name": ""}, "first_name"),
        ({"last_name": "  "}, "last_name"),
        ({"email": "ann"}, "email"),
        ({"date_of_birth": TODAY + timedelta(days=1)}, "date_of_birth"),
        (
            {"membership_start": date(2026, 2, 1), "membership_end": date(2026, 1, 31)},
            "membership_end",
        ),
        ({"phone": "1" * 41}, "phone"),
    ],
)
def test_invalid_details_are_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValue) as error:
        new(msgspec.structs.replace(BASE, **changes))
    assert error.value.field == field


def test_required_fields_must_be_given() -> None:
    with pytest.raises(msgspec.ValidationError, match="email"):
        msgspec.convert({"first_name": "A", "last_name": "B"}, NewCustomer)


def test_change_records_only_differences_and_the_switch() -> None:
    c = new()
    events = customer.change(
        c, CustomerDetails(first_name="Ann", notes="VIP", active=False), today=TODAY, stamp=STAMP
    )
    assert [type(e) for e in events] == [
        customer.CustomerDetailsChanged,
        customer.CustomerDeactivated,
    ]
    changed = events[0]
    assert isinstance(changed, customer.CustomerDetailsChanged)
    assert changed.notes == "VIP"
    assert changed.first_name is msgspec.UNSET
    assert [e.originator_version for e in events] == [2, 3]
    assert customer.change(c, CustomerDetails(active=True), today=TODAY, stamp=STAMP) == []


def test_membership_end_checked_against_the_stored_start() -> None:
    c = new(msgspec.structs.replace(BASE, membership_start=date(2026, 3, 1)))
    with pytest.raises(InvalidValue):
        customer.change(
            c,
            CustomerDetails(membership_end=date(2026, 2, 1)),
            today=TODAY,
            stamp=STAMP,
        )


def test_active_is_derived_from_switch_and_membership() -> None:
    assert customer.is_active(True, None, TODAY)
    assert customer.is_active(True, TODAY, TODAY)  # ends today: still a member today
    assert not customer.is_active(True, TODAY - timedelta(days=1), TODAY)
    assert not customer.is_active(False, None, TODAY)


def test_expiry_recorded_once_per_membership_end() -> None:
    c = new(msgspec.structs.replace(BASE, membership_end=date(2026, 6, 1)))
    first = customer.expire_membership(c, TODAY, STAMP)
    assert first is not None
    c = customer.evolve(c, first)
    assert customer.expire_membership(c, TODAY, STAMP) is None
    # Extended, then lapsed again: a new membership end, a new record.
    extended = customer.change(
        c,
        CustomerDetails(membership_end=date(2026, 6, 10)),
        today=TODAY,
        stamp=STAMP,
    )
    c = customer.evolve(c, extended[0])
    assert customer.expire_membership(c, TODAY, STAMP) is not None
    assert customer.expire_membership(c, date(2026, 6, 10), STAMP) is None  # not lapsed yet


def test_removed_customer_is_gone_for_commands() -> None:
    c = new()
    c = customer.evolve(c, customer.remove(c, STAMP))
    with pytest.raises(NotFound, match="Customer not found"):
        customer.change(c, CustomerDetails(notes="x"), today=TODAY, stamp=STAMP)
    with pytest.raises(NotFound):
        customer.remove(c, STAMP)


def test_age_bounds() -> None:
    on_or_before, after = customer.birth_date_range(date(2026, 6, 15), 18, 30)
    assert on_or_before == date(2008, 6, 15)  # 18th birthday today: included
    assert after == date(1995, 6, 15)  # 31st birthday today: excluded
    assert customer.years_before(date(2028, 2, 29), 1) == date(2027, 2, 28)


dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31))
maybe = st.just(msgspec.UNSET)
details = st.builds(
    CustomerDetails,
    first_name=maybe | st.text(max_size=12),
    last_name=maybe | st.text(max_size=12),
    email=maybe | st.sampled_from(["a@b.com", "X@Y.org", "bad"]),
    phone=maybe | st.none() | st.text(max_size=45),
    date_of_birth=maybe | st.none() | dates,
    membership_start=maybe | st.none() | dates,
    membership_end=maybe | st.none() | dates,
    notes=maybe | st.none() | st.text(max_size=20),
    active=maybe | st.booleans(),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("change"), details, st.none()),
        st.tuples(st.just("expire"), dates, st.none()),
        st.tuples(st.just("remove"), st.none(), st.none()),
    ),
    max_size=15,
)


@settings(max_examples=300, deadline=None)
@given(script=steps)
def test_any_command_sequence_keeps_invariants_and_replays(
    script: list[tuple[object, ...]],
) -> None:
    first = customer.register(uuid4(), uuid4(), BASE, today=TODAY, stamp=STAMP)
    events: list[DomainEvent] = [first]
    state = customer.evolve(None, first)
    for kind, arg, _ in script:
        try:
            if kind == "change":
                assert isinstance(arg, CustomerDetails)
                new_events = customer.change(state, arg, today=TODAY, stamp=STAMP)
            elif kind == "expire":
                assert isinstance(arg, date)
                expired = customer.expire_membership(state, arg, STAMP)
                new_events = [expired] if expired else []
            else:
                new_events = [customer.remove(state, STAMP)]
        except DomainError:
            continue  # refused: no events
        for event in new_events:
            if isinstance(event, customer.MembershipExpired):
                # At most one record per membership end, and only once it has passed.
                assert state.expired_end != event.membership_end
                assert event.membership_end == state.membership_end
            state = customer.evolve(state, event)
            events.append(event)
        assert state.first_name.strip()
        assert state.last_name.strip()
        assert "@" in state.email
        if state.membership_start and state.membership_end:
            assert state.membership_end >= state.membership_start
        assert state.date_of_birth is None or state.date_of_birth <= TODAY
    assert state.version == len(events)
    replayed = customer.project(None, [CODEC.decode(*CODEC.encode(e)) for e in events])
    assert replayed == state
