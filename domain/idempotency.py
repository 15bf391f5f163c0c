"""Idempotency keys: a retried POST must not record its effect twice.

A key (scoped to one gym) maps to a deterministic stream id. The first request
appends `IdempotencyKeyUsed` in the same transaction as its own events, so of
two concurrent requests with one key exactly one commits; the other (and any
later retry) finds the key and gets the first request's result instead.
"""

from collections.abc import Iterable
from uuid import UUID, uuid5

import msgspec

from domain.errors import IdempotencyKeyReused, InvalidValue
from domain.events import DomainEvent, Stamp, envelope

_NAMESPACE = UUID("a4c1f0de-6a0e-4d8e-9f39-2f7c1c7b9e55")
KEY_MAX = 255


class IdempotencyKeyUsed(DomainEvent, frozen=True, kw_only=True):
    gym_id: UUID  # the gym the request acted for (for a signup: the new gym)
    scope: str  # the gym id, or "signup"
    key: str
    fingerprint: str  # digest of the request body that used the key first
    result_id: UUID  # what that request created (or changed)
    # The version of `result_id` that request left: 1 for a creation, which is what
    # every key recorded before commands on existing streams took keys.
    result_version: int = 1


class IdempotencyRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    fingerprint: str
    result_id: UUID
    result_version: int = 1


def stream_id(scope: str, key: str) -> UUID:
    return uuid5(_NAMESPACE, f"{scope}\n{key}")


def check_key(key: str) -> str:
    """Printable ASCII only, as the header's draft standard has it: a header byte
    above 0x7F arrives as Latin-1 (or mangled by a proxy), so it would not name
    the same key on a retry."""
    if not 1 <= len(key) <= KEY_MAX or not (key.isascii() and key.isprintable()):
        raise InvalidValue(
            "Idempotency-Key", f"must be 1 to {KEY_MAX} printable ASCII characters", "header"
        )
    return key


def replay(record: IdempotencyRecord, fingerprint: str) -> UUID:
    """The earlier result for a retry; refuses a different request under the same key."""
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused("Idempotency-Key was already used with a different request body")
    return record.result_id


def use(
    scope: str,
    key: str,
    fingerprint: str,
    result_id: UUID,
    gym_id: UUID,
    stamp: Stamp,
    result_version: int = 1,
) -> IdempotencyKeyUsed:
    return IdempotencyKeyUsed(
        gym_id=gym_id,
        **envelope(stream_id(scope, check_key(key)), 1, stamp),
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        result_id=result_id,
        result_version=result_version,
    )


def project(
    record: IdempotencyRecord | None, events: Iterable[DomainEvent]
) -> IdempotencyRecord | None:
    for event in events:
        if isinstance(event, IdempotencyKeyUsed):
            record = IdempotencyRecord(
                id=event.originator_id,
                version=event.originator_version,
                fingerprint=event.fingerprint,
                result_id=event.result_id,
                result_version=event.result_version,
            )
    return record


EVENTS: tuple[type[DomainEvent], ...] = (IdempotencyKeyUsed,)
