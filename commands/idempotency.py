"""Idempotency keys for commands that create something (see domain/idempotency.py)."""

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.store import EventStore
from domain import idempotency
from domain.events import Stamp


def earlier_result(app: EventStore, scope: str, key: str | None, fingerprint: str) -> UUID | None:
    """The id an earlier request with this key created; None for a new key.

    Raises IdempotencyKeyReused when the earlier request had another body.
    """
    found = earlier_version(app, scope, key, fingerprint)
    return None if found is None else found[0]


def earlier_version(
    app: EventStore, scope: str, key: str | None, fingerprint: str
) -> tuple[UUID, int] | None:
    """The id an earlier request with this key created or changed, and the version it
    left; None for a new key. Raises IdempotencyKeyReused like earlier_result."""
    if key is None:
        return None
    try:
        record: idempotency.IdempotencyRecord = app.repository.get(
            idempotency.stream_id(scope, idempotency.check_key(key)),
            projector_func=idempotency.project,
        )
    except AggregateNotFoundError:
        return None
    return idempotency.replay(record, fingerprint), record.result_version


def key_used(
    scope: str,
    key: str | None,
    fingerprint: str,
    result_id: UUID,
    gym_id: UUID,
    stamp: Stamp,
    result_version: int = 1,
) -> idempotency.IdempotencyKeyUsed | None:
    """The event to append with the command's own events (None without a key)."""
    if key is None:
        return None
    return idempotency.use(scope, key, fingerprint, result_id, gym_id, stamp, result_version)


# The longest key a client may send (its header's documented pattern, api/headers.py).
KEY_MAX = idempotency.KEY_MAX
