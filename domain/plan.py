"""The Plan aggregate: a membership a gym sells (a price for a term).

A change applies to sales made after it: a membership copies the plan's terms when
it is sold (domain/membership.py), so nothing already sold moves. Retiring a plan
stops its sale; its memberships go on.
"""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain import fields as f
from domain import validation as v
from domain.changes import checked, unless_same
from domain.errors import NotFound, PlanNotOnSale, StreamOfAnotherKind
from domain.events import DomainEvent, Stamp, carried_fields, envelope, fold
from domain.terms import RequestedTerm, Term, checked_term

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType

FREEZE_DAYS_MAX = 366
PriceCents = Annotated[
    int,
    msgspec.Meta(ge=0, le=10**12, description="Price of one term in the currency's minor unit."),
]
FreezeDays = Annotated[
    int,
    msgspec.Meta(ge=0, le=FREEZE_DAYS_MAX, description="Days a membership may be frozen per term."),
]


class PlanEvent(DomainEvent, frozen=True, kw_only=True):
    gym_id: UUID


class PlanCreated(PlanEvent, frozen=True, kw_only=True):
    name: str
    price_cents: int
    currency: str
    term: Term
    max_freeze_days: int


class PlanChanged(PlanEvent, frozen=True, kw_only=True):
    """Only the fields that changed are present."""

    name: str | Unset = UNSET
    price_cents: int | Unset = UNSET
    currency: str | Unset = UNSET
    term: Term | Unset = UNSET
    max_freeze_days: int | Unset = UNSET


class PlanRetired(PlanEvent, frozen=True, kw_only=True):
    pass


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    gym_id: UUID
    version: int
    name: str
    price_cents: int
    currency: str
    term: Term
    max_freeze_days: int
    retired: bool
    created_at: datetime
    updated_at: datetime


class NewPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of POST /plans."""

    name: f.Name
    price_cents: PriceCents
    currency: f.Currency
    term: RequestedTerm
    max_freeze_days: FreezeDays = 0


class PlanChanges(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of PATCH /plans/{id}; UNSET = not given."""

    name: f.Name | Unset = UNSET
    price_cents: PriceCents | Unset = UNSET
    currency: f.Currency | Unset = UNSET
    term: RequestedTerm | Unset = UNSET
    max_freeze_days: FreezeDays | Unset = UNSET


def check_changes(c: PlanChanges) -> PlanChanges:
    """Every field that is present, validated and normalised."""
    name = checked(lambda x: v.single_line_text("name", x), c.name)
    currency = checked(v.currency, c.currency)
    term = checked(checked_term, c.term)
    return PlanChanges(
        name=name,
        price_cents=c.price_cents,
        currency=currency,
        term=term,
        max_freeze_days=c.max_freeze_days,
    )


def create(plan_id: UUID, gym_id: UUID, new: NewPlan, stamp: Stamp) -> PlanCreated:
    return PlanCreated(
        **envelope(plan_id, 1, stamp),
        gym_id=gym_id,
        name=v.single_line_text("name", new.name),
        price_cents=new.price_cents,
        currency=v.currency(new.currency),
        term=checked_term(new.term),
        max_freeze_days=new.max_freeze_days,
    )


def change(plan: Plan, changes: PlanChanges, stamp: Stamp) -> PlanChanged | None:
    c = check_changes(changes)
    changed = PlanChanged(
        **_next_event(plan, stamp),
        name=unless_same(c.name, plan.name),
        price_cents=unless_same(c.price_cents, plan.price_cents),
        currency=unless_same(c.currency, plan.currency),
        term=unless_same(c.term, plan.term),
        max_freeze_days=unless_same(c.max_freeze_days, plan.max_freeze_days),
    )
    return None if changed == PlanChanged(**_next_event(plan, stamp)) else changed


def retire(plan: Plan, stamp: Stamp) -> PlanRetired | None:
    """Retiring twice is a no-op: DELETE is idempotent."""
    return None if plan.retired else PlanRetired(**_next_event(plan, stamp))


def require_on_sale(plan: Plan) -> None:
    if plan.retired:
        raise PlanNotOnSale(f"Plan {plan.id} is retired and no longer sold")


def _next_event(plan: Plan, stamp: Stamp) -> dict[str, Any]:
    return {**envelope(plan.id, plan.version + 1, stamp), "gym_id": plan.gym_id}


def evolve(plan: Plan | None, event: DomainEvent) -> Plan:
    if isinstance(event, PlanCreated) and plan is None:
        return Plan(
            id=event.originator_id,
            gym_id=event.gym_id,
            version=event.originator_version,
            name=event.name,
            price_cents=event.price_cents,
            currency=event.currency,
            term=event.term,
            max_freeze_days=event.max_freeze_days,
            retired=False,
            created_at=event.timestamp,
            updated_at=event.timestamp,
        )
    if plan is None:
        raise StreamOfAnotherKind(f"{type(event).__name__} does not start a plan")
    if not isinstance(event, PlanEvent) or event.gym_id != plan.gym_id:
        raise ValueError(f"{type(event).__name__} does not belong to plan {plan.id}")
    touched: dict[str, Any] = {"version": event.originator_version, "updated_at": event.timestamp}
    match event:
        case PlanChanged():
            touched.update(carried_fields(event, "gym_id"))
        case PlanRetired():
            touched["retired"] = True
        case _:
            raise ValueError(f"cannot apply {type(event).__name__} to a plan")
    return msgspec.structs.replace(plan, **touched)


project = fold(evolve)

EVENTS: tuple[type[DomainEvent], ...] = (PlanCreated, PlanChanged, PlanRetired)


def require_present(plan: Plan | None, gym_id: UUID) -> Plan:
    if plan is None or plan.gym_id != gym_id:
        raise NotFound("plan")
    return plan
