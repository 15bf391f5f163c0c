"""The Membership aggregate: one plan sold to one customer, with its lifecycle.

A membership copies the plan's terms when it is sold, so a later change of the plan
never moves it. Its status is derived when read, from the gym-local date (`status_on`):
never stored, so it is right on any day whether or not a job has run. What the
workers record (`MembershipTermExpired`, `MembershipReminderQueued`) are notes for
auditors and the mail outbox, once per term.

Frozen days are counted per term: those of the freezes that start on or after the
current term's first day. A freeze moves `ends_on` later by its days; ending it early
(`unfreeze`) gives back the days not used.
"""

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import msgspec

from domain import fields as f
from domain import validation as v
from domain.errors import InvalidValue, MembershipRuleBroken, NotFound, StreamOfAnotherKind
from domain.events import DomainEvent, Stamp, envelope, fold
from domain.plan import Plan, require_on_sale
from domain.terms import Term, days_between, term_end


class Status(StrEnum):
    UPCOMING = "upcoming"
    ACTIVE = "active"
    FROZEN = "frozen"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class MembershipEvent(DomainEvent, frozen=True, kw_only=True):
    """Every membership event names its gym and customer, so the log reads per tenant
    and a customer's memberships are found without loading them."""

    gym_id: UUID
    customer_id: UUID


class MembershipSold(MembershipEvent, frozen=True, kw_only=True):
    plan_id: UUID
    plan_name: str
    price_cents: int
    currency: str
    term: Term
    max_freeze_days: int
    starts_on: date
    ends_on: date


class MembershipFrozen(MembershipEvent, frozen=True, kw_only=True):
    starts_on: date
    ends_on: date
    reason: str | None
    membership_ends_on: date  # the membership's last day after the freeze


class MembershipUnfrozen(MembershipEvent, frozen=True, kw_only=True):
    freeze_starts_on: date
    on: date  # the first day no longer frozen
    membership_ends_on: date
    # The current term's first day: earlier by the days given back when the freeze
    # was in a term renewed since (every later term moves back with the end).
    term_starts_on: date


class MembershipRenewed(MembershipEvent, frozen=True, kw_only=True):
    term_number: int
    term_starts_on: date
    ends_on: date
    price_cents: int
    currency: str


class MembershipCancelled(MembershipEvent, frozen=True, kw_only=True):
    effective_on: date
    reason: str | None


class MembershipTermExpired(MembershipEvent, frozen=True, kw_only=True):
    term_number: int
    ends_on: date


class MembershipReminderQueued(MembershipEvent, frozen=True, kw_only=True):
    """A reminder that the term ends on `ends_on` went into the mail outbox."""

    term_number: int
    ends_on: date


class Freeze(msgspec.Struct, frozen=True, kw_only=True):
    starts_on: date
    ends_on: date
    reason: str | None = None

    @property
    def days(self) -> int:
        return days_between(self.starts_on, self.ends_on)

    def covers(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    gym_id: UUID
    customer_id: UUID
    plan_id: UUID
    plan_name: str
    version: int
    price_cents: int
    currency: str
    term: Term
    max_freeze_days: int
    starts_on: date
    ends_on: date
    term_number: int
    term_starts_on: date
    freezes: tuple[Freeze, ...]
    cancelled_on: date | None
    cancel_reason: str | None
    expired_term: int  # the last term recorded as expired (0: none)
    reminded_term: int  # the last term a reminder was queued for (0: none)
    created_at: datetime
    updated_at: datetime


class NewMembership(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of POST /customers/{id}/memberships."""

    plan_id: UUID
    starts_on: f.MembershipDay


class FreezeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of POST /memberships/{id}/freeze; both days are frozen."""

    starts_on: f.MembershipDay
    ends_on: f.MembershipDay
    reason: f.Text | None = None


class UnfreezeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of POST /memberships/{id}/unfreeze: `on` is the first day of access again."""

    on: f.MembershipDay


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of POST /memberships/{id}/cancel: no access from `effective_on`."""

    effective_on: f.MembershipDay
    reason: f.Text | None = None


def status_on(m: Membership, today: date) -> Status:
    if m.cancelled_on is not None and today >= m.cancelled_on:
        return Status.CANCELLED
    if today < m.starts_on:
        return Status.UPCOMING
    if today > m.ends_on:
        return Status.EXPIRED
    if any(freeze.covers(today) for freeze in m.freezes):
        return Status.FROZEN
    return Status.ACTIVE


def shown_on_customer(memberships: Iterable[Membership], today: date) -> Membership | None:
    """The membership a customer's `active`, `membership_start` and `membership_end`
    follow on the gym-local `today` (None: the customer holds none, and reads exactly
    as the earlier contract has it, from the dates stored on them):

    1. the memberships that give access today (status `active`): the one that ends
       last (latest `ends_on`; then the newest sale);
    2. else the latest one: the greatest `starts_on`, then the newest sale.

    The customer is then `active` when the owner has not switched them off AND that
    membership is `active` today; `membership_start` is its `starts_on` and
    `membership_end` its last day of access (`last_day_of_access`)."""
    held = list(memberships)
    if not held:
        return None
    giving_access = [m for m in held if status_on(m, today) is Status.ACTIVE]
    if giving_access:
        return max(giving_access, key=lambda m: (m.ends_on, m.created_at, m.id.int))
    return max(held, key=lambda m: (m.starts_on, m.created_at, m.id.int))


def last_day_of_access(m: Membership) -> date:
    """`ends_on`, or the day before `cancelled_on` when access was cancelled from a day
    not after it (before `starts_on` when it was cancelled before it began)."""
    if m.cancelled_on is not None and m.cancelled_on <= m.ends_on:
        return m.cancelled_on - timedelta(days=1)
    return m.ends_on


def frozen_days_this_term(m: Membership) -> int:
    return sum(fr.days for fr in m.freezes if fr.starts_on >= m.term_starts_on)


def check_unfreeze(request: UnfreezeRequest) -> None:
    v.calendar_day("on", request.on)


def check_freeze(request: FreezeRequest) -> None:
    """The rule a freeze keeps on its own (422), checked before any precondition."""
    v.calendar_day("starts_on", request.starts_on)
    v.calendar_day("ends_on", request.ends_on)
    if request.ends_on < request.starts_on:
        raise InvalidValue("ends_on", "must not be before starts_on")
    v.optional_text("reason", request.reason)


def check_cancel(request: CancelRequest) -> None:
    v.calendar_day("effective_on", request.effective_on)
    """The rule a cancellation keeps on its own (422), checked before any precondition."""
    v.optional_text("reason", request.reason)


def sell(
    membership_id: UUID, customer_id: UUID, plan: Plan, starts_on: date, stamp: Stamp
) -> MembershipSold:
    v.calendar_day("starts_on", starts_on)
    require_on_sale(plan)
    return MembershipSold(
        **envelope(membership_id, 1, stamp),
        gym_id=plan.gym_id,
        customer_id=customer_id,
        plan_id=plan.id,
        plan_name=plan.name,
        price_cents=plan.price_cents,
        currency=plan.currency,
        term=plan.term,
        max_freeze_days=plan.max_freeze_days,
        starts_on=starts_on,
        ends_on=term_end(starts_on, plan.term),
    )


def freeze(m: Membership, request: FreezeRequest, stamp: Stamp) -> MembershipFrozen:
    check_freeze(request)
    _require_not_cancelled(m)
    new = Freeze(starts_on=request.starts_on, ends_on=request.ends_on)
    # Within the current term: frozen days are counted per term from its first day,
    # so a freeze in a term already renewed over would escape that term's limit.
    if not m.term_starts_on <= new.starts_on <= m.ends_on:
        raise MembershipRuleBroken(
            f"A freeze must start within the current term ({m.term_starts_on} to {m.ends_on})"
        )
    if any(new.starts_on <= old.ends_on and old.starts_on <= new.ends_on for old in m.freezes):
        raise MembershipRuleBroken("The freeze overlaps another freeze of this membership")
    if m.expired_term >= m.term_number:
        # Its expiry is recorded once per term: a term that ended stays ended; renew.
        raise MembershipRuleBroken("This term has expired; renew the membership first")
    used = frozen_days_this_term(m)
    if used + new.days > m.max_freeze_days:
        raise MembershipRuleBroken(
            f"The plan allows {m.max_freeze_days} frozen days per term; {used} are used "
            f"and this freeze takes {new.days}"
        )
    return MembershipFrozen(
        **_next_event(m, stamp),
        starts_on=new.starts_on,
        ends_on=new.ends_on,
        reason=v.optional_text("reason", request.reason),
        membership_ends_on=_later(m.ends_on, new.days),
    )


def unfreeze(m: Membership, request: UnfreezeRequest, stamp: Stamp) -> MembershipUnfrozen:
    check_unfreeze(request)
    _require_not_cancelled(m)
    current = next((fr for fr in m.freezes if fr.covers(request.on)), None)
    if current is None:
        raise MembershipRuleBroken(f"The membership is not frozen on {request.on}")
    unused = timedelta(days=days_between(request.on, current.ends_on))
    renewed_since = current.starts_on < m.term_starts_on
    return MembershipUnfrozen(
        **_next_event(m, stamp),
        freeze_starts_on=current.starts_on,
        on=request.on,
        membership_ends_on=m.ends_on - unused,
        term_starts_on=m.term_starts_on - unused if renewed_since else m.term_starts_on,
    )


def renew(m: Membership, plan: Plan, stamp: Stamp) -> MembershipRenewed:
    """One more term of the length sold, from the day after `ends_on`, at the plan's
    current price."""
    _require_not_cancelled(m)
    starts_on = _later(m.ends_on, 1)
    return MembershipRenewed(
        **_next_event(m, stamp),
        term_number=m.term_number + 1,
        term_starts_on=starts_on,
        ends_on=term_end(starts_on, m.term),
        price_cents=plan.price_cents,
        currency=plan.currency,
    )


def cancel(m: Membership, request: CancelRequest, stamp: Stamp) -> MembershipCancelled:
    check_cancel(request)
    _require_not_cancelled(m)
    return MembershipCancelled(
        **_next_event(m, stamp),
        effective_on=request.effective_on,
        reason=v.optional_text("reason", request.reason),
    )


def expire(m: Membership, today: date, stamp: Stamp) -> MembershipTermExpired | None:
    """The term's expiry, once, from the day after `ends_on`; None when not due."""
    if m.cancelled_on is not None or today <= m.ends_on or m.expired_term >= m.term_number:
        return None
    return MembershipTermExpired(
        **_next_event(m, stamp), term_number=m.term_number, ends_on=m.ends_on
    )


def remind(
    m: Membership, today: date, reminder_days: int, stamp: Stamp
) -> MembershipReminderQueued | None:
    """The reminder of this term's end, once, from `reminder_days` before it."""
    if reminder_days <= 0 or m.cancelled_on is not None or m.reminded_term >= m.term_number:
        return None
    if not m.ends_on - timedelta(days=reminder_days) <= today <= m.ends_on:
        return None
    return MembershipReminderQueued(
        **_next_event(m, stamp), term_number=m.term_number, ends_on=m.ends_on
    )


def _later(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:  # renewed and frozen until the calendar's end
        raise MembershipRuleBroken("The membership would end after the last day of 9999") from None


def _require_not_cancelled(m: Membership) -> None:
    if m.cancelled_on is not None:
        raise MembershipRuleBroken(f"The membership was cancelled from {m.cancelled_on}")


def _next_event(m: Membership, stamp: Stamp) -> dict[str, Any]:
    return {
        **envelope(m.id, m.version + 1, stamp),
        "gym_id": m.gym_id,
        "customer_id": m.customer_id,
    }


def evolve(m: Membership | None, event: DomainEvent) -> Membership:
    if isinstance(event, MembershipSold) and m is None:
        return Membership(
            id=event.originator_id,
            gym_id=event.gym_id,
            customer_id=event.customer_id,
            plan_id=event.plan_id,
            plan_name=event.plan_name,
            version=event.originator_version,
            price_cents=event.price_cents,
            currency=event.currency,
            term=event.term,
            max_freeze_days=event.max_freeze_days,
            starts_on=event.starts_on,
            ends_on=event.ends_on,
            term_number=1,
            term_starts_on=event.starts_on,
            freezes=(),
            cancelled_on=None,
            cancel_reason=None,
            expired_term=0,
            reminded_term=0,
            created_at=event.timestamp,
            updated_at=event.timestamp,
        )
    if m is None:
        raise StreamOfAnotherKind(f"{type(event).__name__} does not start a membership")
    if not isinstance(event, MembershipEvent) or event.gym_id != m.gym_id:
        raise ValueError(f"{type(event).__name__} does not belong to membership {m.id}")
    touched: dict[str, Any] = {"version": event.originator_version, "updated_at": event.timestamp}
    match event:
        case MembershipFrozen():
            added = Freeze(starts_on=event.starts_on, ends_on=event.ends_on, reason=event.reason)
            touched["freezes"] = tuple(sorted((*m.freezes, added), key=lambda fr: fr.starts_on))
            touched["ends_on"] = event.membership_ends_on
        case MembershipUnfrozen():
            touched["freezes"] = _shortened(m.freezes, event.freeze_starts_on, event.on)
            touched["ends_on"] = event.membership_ends_on
            touched["term_starts_on"] = event.term_starts_on
        case MembershipRenewed():
            touched.update(
                term_number=event.term_number,
                term_starts_on=event.term_starts_on,
                ends_on=event.ends_on,
                price_cents=event.price_cents,
                currency=event.currency,
            )
        case MembershipCancelled():
            touched.update(cancelled_on=event.effective_on, cancel_reason=event.reason)
        case MembershipTermExpired():
            touched = {"version": event.originator_version, "expired_term": event.term_number}
        case MembershipReminderQueued():
            touched = {"version": event.originator_version, "reminded_term": event.term_number}
        case _:
            raise ValueError(f"cannot apply {type(event).__name__} to a membership")
    return msgspec.structs.replace(m, **touched)


def _shortened(freezes: tuple[Freeze, ...], starts_on: date, on: date) -> tuple[Freeze, ...]:
    """The freezes with the one from `starts_on` ending the day before `on` (gone when
    it ends before it began)."""
    kept = []
    for fr in freezes:
        if fr.starts_on != starts_on:
            kept.append(fr)
        elif on > fr.starts_on:
            kept.append(msgspec.structs.replace(fr, ends_on=on - timedelta(days=1)))
    return tuple(kept)


project = fold(evolve)


def require_present(m: Membership | None, gym_id: UUID | None) -> Membership:
    if m is None or (gym_id is not None and m.gym_id != gym_id):
        raise NotFound("membership")
    return m


EVENTS: tuple[type[DomainEvent], ...] = (
    MembershipSold,
    MembershipFrozen,
    MembershipUnfrozen,
    MembershipRenewed,
    MembershipCancelled,
    MembershipTermExpired,
    MembershipReminderQueued,
)
