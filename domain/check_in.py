"""Check-ins at the front desk: may this person come in today?

A check-in is one stream holding one event, `CheckInRecorded`, denied attempts too
(a front desk wants to see them). The decision is recorded with its reason, so the
log shows what the desk was told, whatever the memberships look like later.
"""

from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from uuid import UUID

from domain.events import DomainEvent, Stamp, envelope
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


EVENTS: tuple[type[DomainEvent], ...] = (CheckInRecorded,)
