"""Run a command handler off the event loop, then wait for the read model to catch up."""

import time
from collections.abc import Callable
from typing import TypeVar

from api.state import AppState
from commands.application import GymLedger
from commands.context import CommandContext
from commands.latest import WriteContention
from commands.results import CommandResult
from domain.errors import EmailAlreadyRegistered, VersionConflict
from domain.idempotency import IdempotencyKeyReused
from infra import metrics
from infra.logs import request_id_var

C = TypeVar("C")


def _reason(refused: Exception) -> str:
    if isinstance(refused, EmailAlreadyRegistered):
        return "duplicate"
    if isinstance(refused, IdempotencyKeyReused):
        return "idempotency_key"
    if isinstance(refused, WriteContention):
        return "contention"  # 503: other writers kept winning for the whole budget
    return "version"  # 412: the version the client named is no longer the latest


Handler = Callable[[GymLedger, C, CommandContext], CommandResult]


async def execute(
    state: AppState, handler: Handler[C], command: C, actor: str
) -> tuple[CommandResult, bool]:
    """Returns the handler's result and whether the read model already shows it.

    The command is durable once the handler returns; if the projector is slow or
    down the wait simply times out and the caller answers from the write side.
    """
    ctx = CommandContext.within(
        state.settings.command_timeout,
        actor=actor,
        correlation_id=request_id_var.get() or "unknown",
        clock=state.clock,
    )
    name = type(command).__name__
    started = time.perf_counter()
    try:
        result = await state.on_ledger(handler, command, ctx)
    except (
        VersionConflict,
        EmailAlreadyRegistered,
        IdempotencyKeyReused,
        WriteContention,
    ) as refused:
        metrics.COMMAND_CONFLICTS.labels(name, _reason(refused)).inc()
        raise
    finally:
        metrics.COMMAND_DURATION.labels(name).observe(time.perf_counter() - started)
    visible = await state.watcher.wait_for(result.position, state.settings.read_your_writes_timeout)
    return result, visible
