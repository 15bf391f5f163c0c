"""Builds the Litestar application: routes, error mapping, lifespan resources."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from psycopg_pool import AsyncConnectionPool

from api.consistency import ProjectionWatcher
from api.errors import EXCEPTION_HANDLERS
from api.middleware import request_id_middleware
from api.routes.audit import AuditController
from api.routes.customers import CustomersController
from api.routes.gyms import AuthController, MyGymController
from api.routes.health import health
from api.state import AppState
from commands.application import GymLedger
from infra.clock import Clock, SystemClock
from infra.logs import configure_logging
from infra.settings import Settings, load_settings
from projections.read_model import READ_MODEL


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Litestar:
    settings = settings or load_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        read_pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            settings.database_url, min_size=2, max_size=10, open=False
        )
        await read_pool.open()
        ledger = GymLedger(settings.database_url)
        watcher = ProjectionWatcher(settings.database_url, READ_MODEL)
        await watcher.start()
        app.state["gymledger"] = AppState(
            settings=settings,
            clock=clock or SystemClock(),
            ledger=ledger,
            read_pool=read_pool,
            watcher=watcher,
        )
        try:
            yield
        finally:
            await watcher.stop()
            await read_pool.close()
            ledger.close()

    api = Router(
        path=settings.api_prefix or "/",
        route_handlers=[AuthController, MyGymController, CustomersController, AuditController],
    )
    return Litestar(
        route_handlers=[api, health],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[request_id_middleware],
        openapi_config=OpenAPIConfig(title="GymLedger", version="0.1.0"),
        debug=False,
        logging_config=None,  # infra/logs.py owns logging (JSON lines)
    )
