"""Health and metrics endpoints, outside the API prefix.

/health       kept for existing clients: 200 with every check's result; "degraded"
              and `failing` name what is wrong
/health/live  the process answers (no dependencies), for liveness probes
/health/ready 503 only when this process cannot serve requests (PostgreSQL unreachable);
              Redis, the projector or mail failing leave it ready and "degraded"
              (api/health_checks.py says why)
/metrics      Prometheus exposition for every process sharing the metrics directory

None of them scans a table that grows: the log's head comes from its primary key and
mail counts from triggers (projections/monitoring.py, tests/integration/test_health_cost.py).
"""

from typing import Any

import anyio.to_thread
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from api.health_checks import HealthReport, check
from api.schemas import HealthBody, LivenessReport, ReadinessReport
from api.state import AppState, Services
from infra import metrics
from projections.read_model import READ_MODEL

QUEUES = ("mail", "scheduled")


def _body(container: type[Any], description: str) -> ResponseSpec:
    return ResponseSpec(container, description=description, generate_examples=False)


@get("/health", tags=["health"], responses={200: _body(HealthBody, "Every check's result")})
async def health(services: Services) -> Response[dict[str, Any]]:
    report = await check(services)
    status = "ok" if not report.failing else "degraded"  # the values it always had
    return Response({"status": status, "checks": report.checks, "failing": report.failing})


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
async def ready(services: Services) -> Response[dict[str, Any]]:
    report = await check(services)
    body = {"status": report.status, "checks": report.checks, "failing": report.failing}
    return Response(body, status_code=200 if report.serving else 503)


async def _refresh_gauges(services: AppState, report: HealthReport) -> None:
    """Numbers read at scrape time from PostgreSQL and Redis; a source that is down
    leaves its gauges as they were (a scrape must not fail because of it)."""
    status = report.pipeline
    if status is not None:
        metrics.PROJECTION_POSITION.labels(READ_MODEL).set(status.position)
        metrics.PROJECTION_LAG_EVENTS.labels(READ_MODEL).set(status.lag_events)
        metrics.PROJECTION_LAG_SECONDS.labels(READ_MODEL).set(status.lag_seconds)
        metrics.MAIL_PENDING.set(status.mail_pending)
        metrics.MAIL_DEAD_LETTERED.set(status.mail_failed)
        metrics.PROJECTION_PARKED.labels(READ_MODEL).set(0 if status.parked_at is None else 1)
    if "redis" in report.failing:
        return
    namespace = services.settings.queue_namespace
    for queue in QUEUES:
        try:
            waiting = await services.redis.llen(f"{namespace}:{queue}")
            delayed = await services.redis.llen(f"{namespace}:{queue}.DQ")
            metrics.QUEUE_DEPTH.labels(queue).set(int(waiting) + int(delayed))
        except Exception:  # noqa: S110
            pass


@get("/metrics", tags=["health"], include_in_schema=False)
async def prometheus_metrics(services: Services) -> Response[bytes]:
    await _refresh_gauges(services, await check(services))  # the health checks' gauges too
    body = await anyio.to_thread.run_sync(metrics.render)
    return Response(body, media_type=metrics.CONTENT_TYPE)


ROUTES = [health, live, ready, prometheus_metrics]
