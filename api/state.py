"""Process-wide resources of the API, created in the app's lifespan."""

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread
import redis.asyncio as aioredis
from litestar import Litestar, Request
from psycopg_pool import AsyncConnectionPool

from api.consistency import ProjectionWatcher
from api.gym_cache import OpenGyms
from api.verification import VerificationGate
from commands.application import GymLedger
from infra.clock import Clock
from infra.settings import Settings

T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    clock: Clock
    read_pool: AsyncConnectionPool[Any]
    watcher: ProjectionWatcher
    open_gyms: OpenGyms
    redis: aioredis.Redis
    verifications: VerificationGate
    # Match counts of customer lists, per read-model position: exact, because any
    # change to the read model moves the position and so the key (api/routes/customers).
    counts: "OrderedDict[tuple[Any, ...], int]" = field(default_factory=OrderedDict)
    _ledger: GymLedger | None = None
    _ledger_lock: threading.Lock = field(default_factory=threading.Lock)

    async def on_ledger(self, work: Callable[..., T], *args: Any) -> T:
        """Run write-side work in a worker thread (eventsourcing is synchronous).

        The application is created on first use, in that thread: an API started
        while PostgreSQL is down still starts, answers 503, and recovers by itself.
        """
        return await anyio.to_thread.run_sync(lambda: work(self._get_ledger(), *args))

    def _get_ledger(self) -> GymLedger:
        with self._ledger_lock:
            if self._ledger is None:
                self._ledger = GymLedger(self.settings.database_url, self.settings.db_pool_size)
            return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()

    @staticmethod
    def of(request: Request[Any, Any, Any]) -> "AppState":
        return AppState.from_app(request.app)

    @staticmethod
    def from_app(app: Litestar) -> "AppState":
        state: AppState = app.state["gymledger"]
        return state
