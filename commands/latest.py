"""Deciding a command on the latest version of its stream, however many writers contend.

A command that names no expected version asks for "last writer wins". When another
writer appends first, the command is decided again on the newer state, never answered
with a conflict the client did not ask about (RFC 9110: 412 answers a precondition the
client sent), until it is stored or its time budget (`CommandContext.deadline`) runs
out. A deadline rather than a count: how many times a writer can lose depends on how
many others write, not on anything the server chooses. Deciding again matters: the
domain checks its rules on the very state the new event extends, so a retry may still
be refused for a real reason (the gym closed meanwhile, the email was taken).

A command that names a version keeps its precondition: one writer per version wins and
every other gets VersionConflict (412).
"""

import random
import time
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from commands.context import CommandContext
from commands.store import StreamConflict
from commands.stream_locks import StreamLocks
from infra import metrics

T = TypeVar("T")
# Upper bound of the random pause after losing to a writer in another process: enough
# to fall out of step with it, small next to a command's own time.
MAX_PAUSE_SECONDS = 0.02


class WriteContention(Exception):
    """Other writers kept winning until the command's time budget ran out."""

    def __init__(self, stream_id: UUID, attempts: int) -> None:
        super().__init__(f"stream {stream_id}: still contended after {attempts} attempts")
        self.attempts = attempts


def decide_on_latest(
    locks: StreamLocks,
    stream_id: UUID,
    ctx: CommandContext,
    attempt: Callable[[], T],
    *,
    conditional: bool = False,
) -> T:
    """Run `attempt` (load the latest state, decide, append) until it appends.

    `attempt` raises StreamConflict when another writer appended first. With
    `conditional` (the caller named a version) that conflict is the answer; without,
    the attempt is repeated, holding this process's lock on the stream so that only
    writers in other processes can still win a race against it.
    """
    with locks.holding(stream_id, ctx.remaining()) as held:
        if not held:
            raise WriteContention(stream_id, attempts=0)
        attempts = 0
        while True:
            attempts += 1
            try:
                return attempt()
            except StreamConflict:
                if conditional:
                    raise
                remaining = ctx.remaining()
                if remaining <= 0:
                    raise WriteContention(stream_id, attempts) from None
                metrics.COMMAND_RETRIES.inc()
                time.sleep(random.uniform(0, min(MAX_PAUSE_SECONDS, remaining)))
