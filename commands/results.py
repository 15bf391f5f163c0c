from uuid import UUID

import msgspec


class CommandResult(msgspec.Struct, frozen=True):
    """What a handler returns: enough to wait for the read model and set an ETag."""

    id: UUID
    version: int
    position: int  # global position of the last event written; 0 if nothing changed
    replayed: bool = False  # True when an idempotency key returned an earlier result
    # The aggregate as the command left it, when the handler has it at hand: saves the
    # caller reloading it from the log to answer.
    state: object | None = None
