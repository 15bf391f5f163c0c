"""Health endpoint kept for existing clients; it reports each dependency."""

from typing import Any

from litestar import Request, Response, get

from api.state import AppState
from projections.read_model import READ_MODEL


@get("/health", tags=["health"])
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    state = AppState.of(request)
    checks: dict[str, Any] = {}
    try:
        async with state.read_pool.connection(timeout=2.0) as conn:
            cur = await conn.execute(
                "SELECT (SELECT coalesce(max(notification_id), 0) FROM gymledger_events),"
                " (SELECT position FROM projector_positions WHERE name = %s)",
                (READ_MODEL,),
            )
            row = await cur.fetchone()
        checks["database"] = "ok"
        head, position = row or (0, 0)
        checks["projector_lag_events"] = max(0, int(head) - int(position or 0))
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    status = "ok" if checks["database"] == "ok" else "degraded"
    return Response({"status": status, "checks": checks}, status_code=200)
