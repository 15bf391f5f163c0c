"""The Customer aggregate: one member of one gym, with an optional membership.

"Active" as shown to people is derived, never stored: the owner's flag AND a
membership that has not ended before today (in the gym's timezone). So a lapsed
customer is inactive from the moment the data says so, whether or not the
expiry job has run; `MembershipExpired` records, for auditors, that the system
noticed, at most once per membership end date.
"""

from datetime import date, datetime
from uuid import UUID

import msgspec

from domain import validation as v
from domain.errors import InvalidValue, NotFound
from domain.events import DomainEvent, Stamp, fold

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


class CustomerDetails(msgspec.Struct, frozen=True, kw_only=True):
    """A full or partial set of details as a client sent them; UNSET = not given."""

    first_name: str | Unset = UNSET
    last_name: str | Unset = UNSET
    email: str | Unset = UNSET
    phone: str | Unset | None = UNSET
    date_of_birth: date | Unset | None = UNSET
    membership_start: date | Unset | None = UNSET
    membership_end: date | Unset | None = UNSET
    notes: str | Unset | None = UNSET


DETAIL_FIELDS = CustomerDetails.__struct_fields__


def is_active(owner_active: bool, membership_end: date | None, today: date) -> bool:
    """What people see as "active": the owner's switch and a running membership."""
    return owner_active and not membership_lapsed(membership_end, today)


def membership_lapsed(membership_end: date | None, today: date) -> bool:
    return membership_end is not None and membership_end < today


def _clean(details: CustomerDetails, today: date) -> dict[str, object]:
    out: dict[str, object] = {}
    if details.first_name is not UNSET:
        out["first_name"] = v.single_line_text("first_name", details.first_name)
    if details.last_name is not UNSET:
        out["last_name"] = v.single_line_text("last_name", details.last_name)
    if details.email is not UNSET:
        out["email"] = v.email("email", details.email)
    if details.phone is not UNSET:
        out["phone"] = v.optional_text("phone", details.phone, v.PHONE_MAX)
    if details.notes is not UNSET:
        out["notes"] = v.optional_text("notes", details.notes)
    if details.date_of_birth is not UNSET:
        if details.date_of_birth is not None and details.date_of_birth > today:
            raise InvalidValue("date_of_birth", "must not be in the future")
        out["date_of_birth"] = details.date_of_birth
    for field in ("membership_start", "membership_end"):
        value = getattr(details, field)
        if value is not UNSET:
            out[field] = value
    return out


def check_details(details: CustomerDetails, today: date) -> None:
    """The rules a change must keep whatever the customer's stored state: checked
    before a precondition (If-Match), since a request that fails on its own must say
    so rather than answer 412 (RFC 9110, 13.2.1)."""
    _clean(details, today)
    start, end = details.membership_start, details.membership_end
    _check_membership(
        start if isinstance(start, date) else None, end if isinstance(end, date) else None
    )


def _check_membership(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidValue("membership_end", "must not be before membership_start")


def register(
    customer_id: UUID,
    gym_id: UUID,
    details: CustomerDetails,
    *,
    active: bool,
    today: date,
    stamp: Stamp,
) -> CustomerRegistered:
    for required in ("first_name", "last_name", "email"):
        if getattr(details, required) is UNSET:
            raise InvalidValue(required, "is required")
    fields = {f: None for f in DETAIL_FIELDS} | _clean(details, today)
    _check_membership(fields["membership_start"], fields["membership_end"])  # type: ignore[arg-type]
    return CustomerRegistered(
        originator_id=customer_id,
        originator_version=1,
        timestamp=stamp.at,
        metadata=stamp.metadata,
        gym_id=gym_id,
        active=active,
        **fields,  # type: ignore[arg-type]
    )


def change(
    customer: Customer,
    details: CustomerDetails,
    active: bool | Unset,
    *,
    today: date,
    stamp: Stamp,
) -> list[DomainEvent]:
    """Events for a partial update: changed details, then the owner's switch."""
    require_present(customer)
    cleaned = _clean(details, today)
    changed = {k: val for k, val in cleaned.items() if getattr(customer, k) != val}
    start = changed.get("membership_start", customer.membership_start)
    end = changed.get("membership_end", customer.membership_end)
    if "membership_start" in changed or "membership_end" in changed:
        _check_membership(start, end)  # type: ignore[arg-type]
    events: list[DomainEvent] = []
    version = customer.version
    if changed:
        version += 1
        events.append(
            CustomerDetailsChanged(
                originator_id=customer.id,
                gym_id=customer.gym_id,
                originator_version=version,
                timestamp=stamp.at,
                metadata=stamp.metadata,
                **changed,  # type: ignore[arg-type]
            )
        )
    if active is not UNSET and active != customer.owner_active:
        switch = CustomerReactivated if active else CustomerDeactivated
        version += 1
        events.append(
            switch(
                originator_id=customer.id,
                gym_id=customer.gym_id,
                originator_version=version,
                timestamp=stamp.at,
                metadata=stamp.metadata,
            )
        )
    return events


def expire_membership(customer: Customer, today: date, stamp: Stamp) -> MembershipExpired | None:
    """Record a lapsed membership once per end date; None when there is nothing to record."""
    if customer.removed or customer.membership_end is None:
        return None
    if not membership_lapsed(customer.membership_end, today):
        return None
    if customer.expired_end == customer.membership_end:
        return None
    return MembershipExpired(
        originator_id=customer.id,
        gym_id=customer.gym_id,
        originator_version=customer.version + 1,
        timestamp=stamp.at,
        metadata=stamp.metadata,
        membership_end=customer.membership_end,
    )


def remove(customer: Customer, stamp: Stamp) -> CustomerRemoved:
    require_present(customer)
    return CustomerRemoved(
        originator_id=customer.id,
        gym_id=customer.gym_id,
        originator_version=customer.version + 1,
        timestamp=stamp.at,
        metadata=stamp.metadata,
    )


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
        )
    if customer is None:
        raise ValueError(f"cannot apply {type(event).__name__} before registration")
    if not isinstance(event, CustomerEvent) or event.gym_id != customer.gym_id:
        # A stream holds one gym's customer; anything else is not this customer.
        raise ValueError(f"{type(event).__name__} does not belong to customer {customer.id}")
    touched = {"version": event.originator_version, "updated_at": event.timestamp}
    match event:
        case CustomerDetailsChanged():
            changes = {f: getattr(event, f) for f in DETAIL_FIELDS}
            touched |= {f: val for f, val in changes.items() if val is not UNSET}
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
