"""The Customer aggregate: one member of one gym, with an optional membership.

"Active" as shown to people is derived, never stored: the owner's flag AND a
membership that has not ended before today (in the gym's timezone). So a lapsed
customer is inactive from the moment the data says so, whether or not the
expiry job has run; `MembershipExpired` records, for auditors, that the system
noticed, at most once per membership end date.
"""

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec

from domain import fields as f
from domain import validation as v
from domain.changes import checked, or_current, unless_same
from domain.errors import InvalidValue, NotFound, StreamOfAnotherKind
from domain.events import DomainEvent, Stamp, carried_fields, envelope, fold

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class CustomerEvent(DomainEvent, frozen=True, kw_only=True):
    """Every customer event names the gym, so the log can be read per tenant."""

    gym_id: UUID


class CustomerRegistered(CustomerEvent, frozen=True, kw_only=True):
    first_name: str
    last_name: str
    email: str
    phone: str | None
    date_of_birth: date | None
    membership_start: date | None
    membership_end: date | None
    notes: str | None
    active: bool
    # Absent from events stored before card codes existed: they decode as no card.
    card_code: str | None = None


class CustomerDetailsChanged(CustomerEvent, frozen=True, kw_only=True):
    """Only the fields that changed are present."""

    first_name: str | Unset = UNSET
    last_name: str | Unset = UNSET
    email: str | Unset = UNSET
    phone: str | Unset | None = UNSET
    date_of_birth: date | Unset | None = UNSET
    membership_start: date | Unset | None = UNSET
    membership_end: date | Unset | None = UNSET
    notes: str | Unset | None = UNSET
    card_code: str | Unset | None = UNSET


class CustomerDeactivated(CustomerEvent, frozen=True, kw_only=True):
    pass


class CustomerReactivated(CustomerEvent, frozen=True, kw_only=True):
    pass


class MembershipExpired(CustomerEvent, frozen=True, kw_only=True):
    membership_end: date


class CustomerRemoved(CustomerEvent, frozen=True, kw_only=True):
    pass


class Customer(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    gym_id: UUID
    version: int
    created_at: datetime
    updated_at: datetime
    first_name: str
    last_name: str
    email: str
    phone: str | None
    date_of_birth: date | None
    membership_start: date | None
    membership_end: date | None
    notes: str | None
    owner_active: bool  # the owner's switch; see is_active() for what is shown
    expired_end: date | None = None  # membership end already recorded as expired
    removed: bool = False
    card_code: str | None = None  # held through its claim stream (domain/card_claim.py)


class NewCustomer(msgspec.Struct, frozen=True, kw_only=True):
    """A customer as the owner registers them: the payload of RegisterCustomer
    (POST /customers)."""

    first_name: f.Name
    last_name: f.Name
    email: f.Email
    phone: f.Phone | None = None
    active: bool = True
    date_of_birth: f.BirthDate | None = None
    membership_start: date | None = None
    membership_end: f.MembershipEnd | None = None
    notes: f.Text | None = None
    card_code: f.CardCode | None = None


class CustomerDetails(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update as the owner sent it (PATCH /customers/{id}); UNSET = not given."""

    first_name: f.Name | Unset = UNSET
    last_name: f.Name | Unset = UNSET
    email: f.Email | Unset = UNSET
    phone: f.Phone | Unset | None = UNSET
    active: bool | Unset = UNSET
    date_of_birth: f.BirthDate | Unset | None = UNSET
    membership_start: date | Unset | None = UNSET
    membership_end: f.MembershipEnd | Unset | None = UNSET
    notes: f.Text | Unset | None = UNSET
    card_code: f.CardCode | Unset | None = UNSET  # null takes the card away


def is_active(owner_active: bool, membership_end: date | None, today: date) -> bool:
    """What people see as "active": the owner's switch and a running membership."""
    return owner_active and not membership_lapsed(membership_end, today)


def membership_lapsed(membership_end: date | None, today: date) -> bool:
    return membership_end is not None and membership_end < today


def _birth_date(today: date) -> Callable[[date | None], date | None]:
    def check(born: date | None) -> date | None:
        if born is not None and born > today:
            raise InvalidValue("date_of_birth", "must not be in the future")
        return born

    return check


def _clean(d: CustomerDetails, today: date) -> CustomerDetails:
    """Every field that is present, validated and normalised; absent ones stay absent."""
    first_name = checked(lambda x: v.single_line_text("first_name", x), d.first_name)
    last_name = checked(lambda x: v.single_line_text("last_name", x), d.last_name)
    email = checked(lambda x: v.email("email", x), d.email)
    phone = checked(lambda x: v.optional_text("phone", x, v.PHONE_MAX), d.phone)
    date_of_birth = checked(_birth_date(today), d.date_of_birth)
    notes = checked(lambda x: v.optional_text("notes", x), d.notes)
    card_code = checked(_card_code, d.card_code)
    return CustomerDetails(
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        active=d.active,
        date_of_birth=date_of_birth,
        membership_start=d.membership_start,
        membership_end=d.membership_end,
        notes=notes,
        card_code=card_code,
    )


def _card_code(value: str | None) -> str | None:
    return None if value is None else v.card_code("card_code", value)


def check_details(details: CustomerDetails, today: date) -> None:
    """The rules a change must keep whatever the customer's stored state: checked
    before a precondition (If-Match), since a request that fails on its own must say
    so rather than answer 412 (RFC 9110, 13.2.1)."""
    _clean(details, today)
    _check_membership(
        or_current(details.membership_start, None), or_current(details.membership_end, None)
    )


def _check_membership(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidValue("membership_end", "must not be before membership_start")


def register(
    customer_id: UUID,
    gym_id: UUID,
    new: NewCustomer,
    *,
    today: date,
    stamp: Stamp,
) -> CustomerRegistered:
    _check_membership(new.membership_start, new.membership_end)
    return CustomerRegistered(
        **envelope(customer_id, 1, stamp),
        gym_id=gym_id,
        active=new.active,
        first_name=v.single_line_text("first_name", new.first_name),
        last_name=v.single_line_text("last_name", new.last_name),
        email=v.email("email", new.email),
        phone=v.optional_text("phone", new.phone, v.PHONE_MAX),
        date_of_birth=_birth_date(today)(new.date_of_birth),
        membership_start=new.membership_start,
        membership_end=new.membership_end,
        notes=v.optional_text("notes", new.notes),
        card_code=_card_code(new.card_code),
    )


def change(
    customer: Customer, details: CustomerDetails, *, today: date, stamp: Stamp
) -> list[DomainEvent]:
    """Events for a partial update: changed details, then the owner's switch."""
    require_present(customer)
    c = _clean(details, today)
    envelope = _next_event(customer, stamp)
    changed = CustomerDetailsChanged(
        **envelope,
        first_name=unless_same(c.first_name, customer.first_name),
        last_name=unless_same(c.last_name, customer.last_name),
        email=unless_same(c.email, customer.email),
        phone=unless_same(c.phone, customer.phone),
        date_of_birth=unless_same(c.date_of_birth, customer.date_of_birth),
        membership_start=unless_same(c.membership_start, customer.membership_start),
        membership_end=unless_same(c.membership_end, customer.membership_end),
        notes=unless_same(c.notes, customer.notes),
        card_code=unless_same(c.card_code, customer.card_code),
    )
    if changed.membership_start is not UNSET or changed.membership_end is not UNSET:
        _check_membership(
            or_current(changed.membership_start, customer.membership_start),
            or_current(changed.membership_end, customer.membership_end),
        )
    events: list[DomainEvent] = []
    if changed != CustomerDetailsChanged(**envelope):
        events.append(changed)
    if not isinstance(c.active, Unset) and c.active != customer.owner_active:
        switch = CustomerReactivated if c.active else CustomerDeactivated
        events.append(switch(**_next_event(customer, stamp, len(events) + 1)))
    return events


def expire_membership(customer: Customer, today: date, stamp: Stamp) -> MembershipExpired | None:
    """Record a lapsed membership once per end date; None when there is nothing to record."""
    if customer.removed or customer.membership_end is None:
        return None
    if not membership_lapsed(customer.membership_end, today):
        return None
    if customer.expired_end == customer.membership_end:
        return None
    return MembershipExpired(**_next_event(customer, stamp), membership_end=customer.membership_end)


def remove(customer: Customer, stamp: Stamp) -> CustomerRemoved:
    require_present(customer)
    return CustomerRemoved(**_next_event(customer, stamp))


def _next_event(customer: Customer, stamp: Stamp, step: int = 1) -> dict[str, Any]:
    """The envelope of the customer's next event (`step` events after its version)."""
    return {**envelope(customer.id, customer.version + step, stamp), "gym_id": customer.gym_id}


def require_present(customer: Customer) -> None:
    if customer.removed:
        raise NotFound("customer")


def evolve(customer: Customer | None, event: DomainEvent) -> Customer:
    if isinstance(event, CustomerRegistered) and customer is None:
        return Customer(
            id=event.originator_id,
            gym_id=event.gym_id,
            version=event.originator_version,
            created_at=event.timestamp,
            updated_at=event.timestamp,
            first_name=event.first_name,
            last_name=event.last_name,
            email=event.email,
            phone=event.phone,
            date_of_birth=event.date_of_birth,
            membership_start=event.membership_start,
            membership_end=event.membership_end,
            notes=event.notes,
            owner_active=event.active,
            card_code=event.card_code,
        )
    if customer is None:  # the stream is not a customer's (a gym's, a claim's, ...)
        raise StreamOfAnotherKind(f"{type(event).__name__} does not start a customer")
    if not isinstance(event, CustomerEvent) or event.gym_id != customer.gym_id:
        # A stream holds one gym's customer; anything else is not this customer.
        raise ValueError(f"{type(event).__name__} does not belong to customer {customer.id}")
    touched = {"version": event.originator_version, "updated_at": event.timestamp}
    match event:
        case CustomerDetailsChanged():
            return _with_details(customer, event)
        case CustomerDeactivated():
            touched["owner_active"] = False
        case CustomerReactivated():
            touched["owner_active"] = True
        case MembershipExpired():
            # The system's note does not change what the customer looks like.
            touched = {"version": event.originator_version, "expired_end": event.membership_end}
        case CustomerRemoved():
            touched["removed"] = True
        case _:
            raise ValueError(f"cannot apply {type(event).__name__} to a customer")
    return msgspec.structs.replace(customer, **touched)


def _with_details(customer: Customer, e: CustomerDetailsChanged) -> Customer:
    # The event names only the fields that changed, by the names the state has.
    changed = carried_fields(e, "gym_id")
    return msgspec.structs.replace(
        customer, version=e.originator_version, updated_at=e.timestamp, **changed
    )


project = fold(evolve)


EVENTS: tuple[type[DomainEvent], ...] = (
    CustomerRegistered,
    CustomerDetailsChanged,
    CustomerDeactivated,
    CustomerReactivated,
    MembershipExpired,
    CustomerRemoved,
)


def years_before(today: date, years: int) -> date:
    """The same calendar day `years` earlier (Feb 29 falls back to Feb 28)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def birth_date_range(
    today: date, min_age: int | None, max_age: int | None
) -> tuple[date | None, date | None]:
    """(born on or before, born after) bounds selecting ages in [min_age, max_age].

    Someone is N years old from their Nth birthday up to the day before the next.
    """
    on_or_before = years_before(today, min_age) if min_age is not None else None
    after = years_before(today, max_age + 1) if max_age is not None else None
    return on_or_before, after
