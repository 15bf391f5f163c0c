"""Process-wide resources of the API, created in the app's lifespan."""

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from litestar import Litestar, Request
from psycopg_pool import AsyncConnectionPool

from api.consistency import ProjectionWatcher
from commands.application import GymLedger
from infra.clock import Clock
from infra.settings import Settings


@dataclass
class AppState:
    settings: Settings
    clock: Clock
    ledger: GymLedger
    read_pool: AsyncConnectionPool[Any]
    watcher: ProjectionWatcher
    redis: aioredis.Redis

    @staticmethod
    def of(request: Request[Any, Any, Any]) -> "AppState":
        return AppState.from_app(request.app)

    @staticmethod
    def from_app(app: Litestar) -> "AppState":
        state: AppState = app.state["gymledger"]
        return state
