"""Health and metrics endpoints, outside the API prefix.

/health       kept for existing clients: 200 with every check's result
/health/live  the process answers (no dependencies), for liveness probes
/health/ready PostgreSQL and Redis reachable and the projector not too far behind;
              503 naming what fails, for readiness probes and load balancers
/metrics      Prometheus exposition for every process sharing the metrics directory

None of them scans a table that grows: the log's head comes from its primary key and
mail counts from triggers (projections/monitoring.py, tests/integration/test_health_cost.py).
"""

import asyncio
from typing import Any

import anyio.to_thread
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from api.schemas import HealthReport, LivenessReport, ReadinessReport
from api.state import AppState
from infra import metrics
from projections.monitoring import pipeline_status
from projections.read_model import READ_MODEL

CHECK_TIMEOUT = 2.0
PARKED = "parked at an event it cannot apply; see `gymledger projections status`"
QUEUES = ("mail", "scheduled")


async def _checks(state: AppState) -> tuple[dict[str, Any], list[str]]:
    checks: dict[str, Any] = {}
    failing: list[str] = []
    try:
        async with state.read_pool.connection(timeout=CHECK_TIMEOUT) as conn:
            status = await asyncio.wait_for(pipeline_status(conn, READ_MODEL), CHECK_TIMEOUT)
        checks["database"] = "ok"
        checks["projector_lag_events"] = status.lag_events
        checks["projector_lag_seconds"] = round(status.lag_seconds, 3)
        if status.lag_events > state.settings.ready_max_lag_events:
            failing.append("projector_lag")
        if status.parked_at is not None:
            # Anyone may call this: the error text stays in the projector's log and
            # `gymledger projections status`, since it can quote the event's data.
            checks["projector_parked"] = {"position": status.parked_at, "message": PARKED}
            failing.append("projector_parked")
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
        failing.append("database")
    try:
        await asyncio.wait_for(state.redis.ping(), CHECK_TIMEOUT)
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
        failing.append("redis")
    return checks, failing


def _body(container: type[Any], description: str) -> ResponseSpec:
    return ResponseSpec(container, description=description, generate_examples=False)


@get("/health", tags=["health"], responses={200: _body(HealthReport, "Every check's result")})
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    checks, failing = await _checks(AppState.of(request))
    return Response({"status": "ok" if not failing else "degraded", "checks": checks})


@get("/health/live", tags=["health"], responses={200: _body(LivenessReport, "The process answers")})
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/health/ready",
    tags=["health"],
    responses={
        200: _body(ReadinessReport, "Ready to serve"),
        503: _body(ReadinessReport, "Not ready: `failing` names what"),
    },
)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    checks, failing = await _checks(AppState.of(request))
    body = {"status": "ok" if not failing else "unavailable", "checks": checks, "failing": failing}
    return Response(body, status_code=503 if failing else 200)


async def _refresh_gauges(state: AppState) -> None:
    """Numbers read at scrape time from PostgreSQL and Redis."""
    try:
        async with state.read_pool.connection(timeout=CHECK_TIMEOUT) as conn:
            status = await pipeline_status(conn, READ_MODEL)
        metrics.PROJECTION_POSITION.labels(READ_MODEL).set(status.position)
        metrics.PROJECTION_LAG_EVENTS.labels(READ_MODEL).set(status.lag_events)
        metrics.PROJECTION_LAG_SECONDS.labels(READ_MODEL).set(status.lag_seconds)
        metrics.MAIL_PENDING.set(status.mail_pending)
        metrics.PROJECTION_PARKED.labels(READ_MODEL).set(0 if status.parked_at is None else 1)
    except Exception:  # noqa: S110 - a scrape must not fail because one source is down
        pass
    namespace = state.settings.queue_namespace
    for queue in QUEUES:
        try:
            waiting = await state.redis.llen(f"{namespace}:{queue}")
            delayed = await state.redis.llen(f"{namespace}:{queue}.DQ")
            metrics.QUEUE_DEPTH.labels(queue).set(int(waiting) + int(delayed))
        except Exception:  # noqa: S110
            pass


@get("/metrics", tags=["health"], include_in_schema=False)
async def prometheus_metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    await _refresh_gauges(AppState.of(request))
    body = await anyio.to_thread.run_sync(metrics.render)
    return Response(body, media_type=metrics.CONTENT_TYPE)


ROUTES = [health, live, ready, prometheus_metrics]
