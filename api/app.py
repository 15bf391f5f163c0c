"""Builds the Litestar application: routes, error mapping, lifespan resources."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp
from psycopg_pool import AsyncConnectionPool

from api.consistency import ProjectionWatcher
from api.errors import EXCEPTION_HANDLERS
from api.gym_cache import OpenGyms
from api.middleware import in_progress_middleware, observed
from api.openapi import finish
from api.routes import health
from api.routes.audit import AuditController
from api.routes.check_ins import CheckInsController
from api.routes.credentials import CredentialsController
from api.routes.customers import CustomersController
from api.routes.gyms import AuthController, MyGymController
from api.routes.mails import MailsController
from api.routes.memberships import MembershipsController
from api.routes.plans import PlansController
from api.routes.reports import ReportsController
from api.state import AppState
from api.strict import strict_request
from api.verification import VerificationGate
from infra.bootstrap import bootstrap
from infra.clock import Clock
from infra.db import read_session_url
from infra.event_store import RECONNECT_SECONDS
from infra.logs import configure_logging
from infra.settings import Settings, load_settings
from projections.read_model import READ_MODEL


def services(state: State) -> AppState:
    """The dependency every route that needs the process's resources declares."""
    found: AppState = state["gymledger"]
    return found


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> ASGIApp:
    """The API's entry point: bootstrap() builds the process's parts."""
    runtime = bootstrap(settings or load_settings(), clock)
    settings = runtime.settings
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # autocommit: every read is one statement, so BEGIN/COMMIT would only add a round trip.
        # Like the write side (infra/event_store.py) it fails fast while PostgreSQL is
        # down and reconnects on demand: a request waits at most 2 s for a connection,
        # and background reconnecting stops after a moment. Connections are not pinged
        # before use (a round trip per request); when the watcher had to reconnect, it
        # has the pool drop the connections a server restart broke.
        read_pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            read_session_url(settings.database_url),  # generic plans (infra/db.py)
            min_size=2,
            max_size=2 * settings.db_pool_size,
            open=False,
            kwargs={"autocommit": True},
            timeout=2.0,
            reconnect_timeout=RECONNECT_SECONDS,
        )
        await read_pool.open()
        open_gyms = OpenGyms()
        watcher = ProjectionWatcher(
            settings.database_url, READ_MODEL, open_gyms, after_reconnect=read_pool.check
        )
        await watcher.start()
        redis_client = aioredis.Redis.from_url(
            settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        state = app.state["gymledger"] = AppState(
            runtime=runtime,
            read_pool=read_pool,
            watcher=watcher,
            open_gyms=open_gyms,
            redis=redis_client,
            verifications=VerificationGate(settings.database_url),
        )
        state.verifications.open()
        try:
            yield
        finally:
            state.verifications.close()
            await watcher.stop()
            await redis_client.aclose()
            await read_pool.close()
            state.close()

    api = Router(
        path=settings.api_prefix or "/",
        route_handlers=[
            AuthController,
            CredentialsController,
            MyGymController,
            CustomersController,
            AuditController,
            MailsController,
            ReportsController,
            PlansController,
            MembershipsController,
            CheckInsController,
        ],
    )
    cors = CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None
    app = Litestar(
        route_handlers=[api, *health.ROUTES],
        dependencies={"services": Provide(services, sync_to_thread=False)},
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=strict_request,
        middleware=[in_progress_middleware],
        cors_config=cors,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="GymLedger",
            version="0.1.0",
            use_handler_docstrings=True,
            description=(
                "Errors are JSON `{detail, status_code}`; 422 names each refused value "
                "in `detail: [{loc, msg, type}]`. Every response carries X-Request-ID."
            ),
        ),
        debug=False,
        logging_config=None,  # infra/logs.py owns logging (JSON lines)
    )
    finish(app.openapi_schema)  # before anything renders it (api/openapi.py)
    allow = {
        route.path_format: ", ".join(sorted(route.methods))
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }
    return observed(app, allow)
