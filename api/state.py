"""Process-wide resources of the API, created in the app's lifespan and handed to
routes through one Litestar dependency, `services` (api/app.py)."""

import asyncio
import contextvars
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.asyncio as aioredis
from litestar.di import NamedDependency
from psycopg_pool import AsyncConnectionPool

from api.consistency import ProjectionWatcher
from api.gym_cache import OpenGyms
from api.verification import VerificationGate
from commands.application import Command, GymLedger
from commands.context import CommandContext
from commands.results import CommandResult
from infra.bootstrap import Runtime
from infra.clock import Clock
from infra.logs import request_id_var
from infra.settings import Settings

T = TypeVar("T")
LEDGER_THREADS = 40


@dataclass
class AppState:
    runtime: Runtime
    read_pool: AsyncConnectionPool[Any]
    watcher: ProjectionWatcher
    open_gyms: OpenGyms
    redis: aioredis.Redis
    verifications: VerificationGate
    # Match counts of customer lists, per read-model position: exact, because any
    # change to the read model moves the position and so the key (api/routes/customers).
    counts: "OrderedDict[tuple[Any, ...], int]" = field(default_factory=OrderedDict)
    # The counts being worked out, for the requests that miss the same key meanwhile.
    counting: "dict[tuple[Any, ...], asyncio.Future[int | None]]" = field(default_factory=dict)
    # Threads for the write side; as many as anyio's default (commands queued behind
    # an append wait in theirs, see infra/group_commit.py). An executor rather than
    # anyio.to_thread: measured, 49 against 117 microseconds of CPU per call.
    ledger_threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(LEDGER_THREADS, thread_name_prefix="ledger")
    )

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def clock(self) -> Clock:
        return self.runtime.clock

    async def run(self, command: Command, actor: str) -> tuple[CommandResult, bool]:
        """Handle `command` off the event loop, then wait for the read model to show it.
        Returns the result and whether the read model already shows it.

        The command is durable once handled; if the projector is slow or down the
        wait simply times out and the caller answers from the write side.
        """
        ctx = CommandContext.within(
            self.settings.command_timeout,
            actor=actor,
            correlation_id=request_id_var.get() or "unknown",
            clock=self.clock,
        )
        result = await self.on_ledger(lambda ledger: ledger.handle(command, ctx))
        visible = await self.watcher.wait_for(
            result.position, self.settings.read_your_writes_timeout
        )
        return result, visible

    async def on_ledger(self, work: Callable[[GymLedger], T]) -> T:
        """Run write-side work in a worker thread (eventsourcing is synchronous).

        The ledger is made on first use, in that thread: an API started while
        PostgreSQL is down still starts, answers 503, and recovers by itself.
        """
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # the request id, for the thread's log lines
        return await loop.run_in_executor(
            self.ledger_threads, context.run, lambda: work(self.runtime.ledger())
        )

    def close(self) -> None:
        self.ledger_threads.shutdown()  # the commands in flight finish first
        self.runtime.close()


# How a route asks for the process's resources (api/app.py provides them).
Services = NamedDependency[AppState]
