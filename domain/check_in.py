"""Check-ins at the front desk: may this person come in today?

A check-in is one stream holding one event, `CheckInRecorded`, denied attempts too
(a front desk wants to see them). The decision is recorded with its reason, so the
log shows what the desk was told, whatever the memberships look like later.
"""

from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

import msgspec

from domain import fields as f
from domain import validation as v
from domain.errors import InvalidValue, StreamOfAnotherKind
from domain.events import DomainEvent, Stamp, envelope, fold
from domain.membership import Status


class Reason(StrEnum):
    FROZEN = "frozen"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UPCOMING = "upcoming"
    NO_MEMBERSHIP = "no_membership"
    INACTIVE = "inactive"


# When no membership gives access, the reason names the one closest to giving it: a
# frozen membership comes back by itself, an upcoming one starts later, an expired one
# can be renewed; a cancelled one is over.
_CLOSEST_TO_ACCESS = (Status.FROZEN, Status.UPCOMING, Status.EXPIRED, Status.CANCELLED)


class CheckInRecorded(DomainEvent, frozen=True, kw_only=True):
    gym_id: UUID
    customer_id: UUID
    allowed: bool
    reason: str | None  # a Reason when denied
    card_code: str | None  # the card scanned, when the desk used one


class NewCheckIn(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of POST /check-ins: the customer at the desk, by id or by the card
    they scanned; exactly one of the two."""

    customer_id: UUID | msgspec.UnsetType = msgspec.UNSET
    card_code: f.CardCode | msgspec.UnsetType = msgspec.UNSET

    # "Exactly one", for the published schema (api/openapi.py merges it in); the rule
    # itself is `identified_by`.
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "oneOf": [{"required": ["customer_id"]}, {"required": ["card_code"]}]
    }


def identified_by(request: NewCheckIn) -> UUID | str:
    """The customer's id, or the card code (checked), the request names."""
    customer_id, card_code = request.customer_id, request.card_code
    if isinstance(customer_id, UUID) and isinstance(card_code, msgspec.UnsetType):
        return customer_id
    if isinstance(card_code, str) and isinstance(customer_id, msgspec.UnsetType):
        return v.card_code("card_code", card_code)
    raise InvalidValue("customer_id", "give exactly one of customer_id and card_code")


def decide(owner_active: bool, statuses: Iterable[Status]) -> tuple[bool, Reason | None]:
    """(allowed, reason): allowed only when the owner has not switched the customer off
    and one of their memberships is active today."""
    if not owner_active:
        return False, Reason.INACTIVE
    held = set(statuses)
    if Status.ACTIVE in held:
        return True, None
    for status in _CLOSEST_TO_ACCESS:
        if status in held:
            return False, Reason(status.value)
    return False, Reason.NO_MEMBERSHIP


def dated_status(starts_on: date | None, ends_on: date | None, today: date) -> Status | None:
    """The status of a membership given as two dates on the customer (the earlier
    contract's `membership_start`/`membership_end`); None when neither is set."""
    if starts_on is None and ends_on is None:
        return None
    if starts_on is not None and today < starts_on:
        return Status.UPCOMING
    if ends_on is not None and today > ends_on:
        return Status.EXPIRED
    return Status.ACTIVE


def record(
    check_in_id: UUID,
    gym_id: UUID,
    customer_id: UUID,
    decision: tuple[bool, Reason | None],
    card_code: str | None,
    stamp: Stamp,
) -> CheckInRecorded:
    allowed, reason = decision
    return CheckInRecorded(
        **envelope(check_in_id, 1, stamp),
        gym_id=gym_id,
        customer_id=customer_id,
        allowed=allowed,
        reason=None if reason is None else reason.value,
        card_code=card_code,
    )


def evolve(current: CheckInRecorded | None, event: DomainEvent) -> CheckInRecorded:
    """A check-in's state is its one event."""
    if isinstance(event, CheckInRecorded) and current is None:
        return event
    raise StreamOfAnotherKind(f"{type(event).__name__} is not a check-in's")


project = fold(evolve)


EVENTS: tuple[type[DomainEvent], ...] = (CheckInRecorded,)
