"""What /health, /health/ready and /metrics report: each dependency's state, and which
failures stop this process from serving.

Only the database does. Commands and queries need PostgreSQL and nothing else: with
Redis down they still work (mail waits in the outbox, login limits fail open), with the
projector lagging or parked they still work (responses are built from the event log
after READ_YOUR_WRITES_TIMEOUT), and failing mail waits for an operator. Those make the
service degraded, not unavailable: reported by /health and the per-check gauge, and
alerted on, while readiness stays green. Failing readiness for them would take every
API pod out of the load balancer at once, over a problem none of them can fix.

Every check reads an index or a bounded table (projections/monitoring.py), and they
run side by side, each within CHECK_TIMEOUT.
"""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from api.state import AppState
from infra import metrics
from projections.monitoring import PipelineStatus, pipeline_status
from projections.read_model import READ_MODEL

CHECK_TIMEOUT = 2.0
PARKED = "parked at an event it cannot apply; see `gymledger projections status`"
# The projector has not committed a batch for this long while events wait: stalled or
# down, however few events are waiting.
STALLED_AFTER_SECONDS = 60.0
# Every check, as named in `failing` and in the gymledger_health_check gauge.
CHECKS = ("database", "redis", "projector_lag", "projector_parked", "mail")
# Without these this process cannot serve requests: readiness fails.
REQUIRED = frozenset({"database"})


@dataclass(frozen=True)
class HealthReport:
    checks: dict[str, Any]
    failing: list[str]
    pipeline: PipelineStatus | None = field(default=None, repr=False)

    @property
    def serving(self) -> bool:
        return REQUIRED.isdisjoint(self.failing)

    @property
    def status(self) -> str:
        if not self.failing:
            return "ok"
        return "degraded" if self.serving else "unavailable"


async def _pipeline(state: AppState) -> PipelineStatus:
    async with state.read_pool.connection(timeout=CHECK_TIMEOUT) as conn:
        return await asyncio.wait_for(pipeline_status(conn, READ_MODEL), CHECK_TIMEOUT)


async def _redis(state: AppState) -> None:
    await asyncio.wait_for(state.redis.ping(), CHECK_TIMEOUT)


def _unavailable(error: BaseException) -> str:
    return f"unavailable: {type(error).__name__}"


async def check(state: AppState) -> HealthReport:
    """Run every check and publish each one's state as gymledger_health_check."""
    found, redis = await asyncio.gather(_pipeline(state), _redis(state), return_exceptions=True)
    checks: dict[str, Any] = {}
    failing: list[str] = []
    known: set[str] = {"database", "redis"}
    pipeline = found if isinstance(found, PipelineStatus) else None
    if pipeline is not None:
        checks["database"] = "ok"
        checks["projector_lag_events"] = pipeline.lag_events
        checks["projector_lag_seconds"] = round(pipeline.lag_seconds, 3)
        if (
            pipeline.lag_events > state.settings.ready_max_lag_events
            or pipeline.lag_seconds > STALLED_AFTER_SECONDS
        ):
            failing.append("projector_lag")
        if pipeline.parked_at is not None:
            # Anyone may call this: the error text stays in the projector's log and
            # `gymledger projections status`, since it can quote the event's data.
            checks["projector_parked"] = {"position": pipeline.parked_at, "message": PARKED}
            failing.append("projector_parked")
        checks["mail"] = {"pending": pipeline.mail_pending, "failed": pipeline.mail_failed}
        if pipeline.mail_failed:  # given up after every retry: someone must look
            failing.append("mail")
        known.update(("projector_lag", "projector_parked", "mail"))
    else:
        assert isinstance(found, BaseException)
        checks["database"] = _unavailable(found)
        failing.append("database")
    if isinstance(redis, BaseException):
        checks["redis"] = _unavailable(redis)
        failing.append("redis")
    else:
        checks["redis"] = "ok"
    # Without the database the projector's and the mail's state are unknown: their
    # gauges keep their last value rather than claim anything.
    for name in known:
        metrics.HEALTH_CHECK.labels(name).set(0 if name in failing else 1)
    return HealthReport(checks, failing, pipeline)
