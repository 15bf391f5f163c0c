"""Read-only numbers operators watch: projector lag and the mail outbox.

Called on every /health, /health/ready and /metrics request, so every part is an
index lookup or a read of a bounded table: the log's head through its primary key,
mail counts from mail_outbox_counts (kept by triggers, projections/mail_outbox.py).
"""

from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg

from infra.db import EVENTS_TABLE


class PipelineStatus(msgspec.Struct, frozen=True):
    head: int  # newest log position
    position: int  # newest position the read model includes
    lag_events: int
    lag_seconds: float  # age of the oldest event not yet applied
    mail_pending: int
    mail_failed: int
    parked_at: int | None  # position of the event the projection is parked at
    parked_error: str | None  # for operators only (log, CLI): it can quote event data
    parked_since: datetime | None


# One statement, not projection_position() and friends: it runs on every health
# check and scrape, and one round trip gives one consistent picture of head and position.
STATUS_SQL = f"""
SELECT
    (SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}),
    (SELECT coalesce(max(position), 0) FROM projector_positions WHERE name = %(name)s),
    (SELECT coalesce(sum(n), 0) FROM mail_outbox_counts WHERE status = 'pending'),
    (SELECT coalesce(sum(n), 0) FROM mail_outbox_counts WHERE status = 'failed'),
    (SELECT position FROM projection_faults WHERE projection = %(name)s),
    (SELECT error FROM projection_faults WHERE projection = %(name)s),
    (SELECT failed_at FROM projection_faults WHERE projection = %(name)s)
"""  # noqa: S608 - constants only


async def pipeline_status(conn: psycopg.AsyncConnection[Any], projection: str) -> PipelineStatus:
    cur = await conn.execute(STATUS_SQL, {"name": projection})
    row = await cur.fetchone()
    head, position, pending, failed, parked_at, parked_error, parked_since = row or (
        (0, 0, 0, 0, None, None, None)
    )
    lag_seconds = 0.0
    if head > position:
        # The log itself has no time column; the projector's last position's
        # successor is not indexed yet, so measure from when the projector last moved.
        cur = await conn.execute(
            "SELECT updated_at FROM projector_positions WHERE name = %s", (projection,)
        )
        moved = await cur.fetchone()
        if moved is not None:
            lag_seconds = max(0.0, (datetime.now(UTC) - moved[0]).total_seconds())
    return PipelineStatus(
        head=int(head),
        position=int(position),
        lag_events=max(0, int(head) - int(position)),
        lag_seconds=lag_seconds,
        mail_pending=int(pending),
        mail_failed=int(failed),
        parked_at=parked_at,
        parked_error=parked_error,
        parked_since=parked_since,
    )
