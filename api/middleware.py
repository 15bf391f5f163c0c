"""ASGI layers around the whole app: request ids, security headers, access logs, metrics.

`observed()` wraps the Litestar app from the outside so that it also sees requests
no route matched (Litestar's own middleware runs only for matched routes): every
response carries an X-Request-ID and the security headers, and unknown URLs count
under one `unmatched` label instead of one series per URL.
"""

import logging
import re
import time
import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from infra import metrics
from infra.logs import request_id_var

log = logging.getLogger("gymledger.access")
# Accept a caller's id only if it is short and plain, so it is safe in logs and headers.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "unmatched"

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
# JSON needs nothing from the page; the interactive docs under /schema load scripts.
_STRICT_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


def _route(scope: Scope) -> str:
    template = scope.get("path_template")
    return str(template) if template else UNMATCHED


def observed(app: ASGIApp, allow: dict[str, str] | None = None) -> ASGIApp:
    """`allow`: the Allow header of each route template's OPTIONS answer. Litestar
    builds a route once per controller that adds methods to it, and its OPTIONS
    answer keeps the methods of the first build only (GET /gyms/me answered
    "Allow: DELETE, OPTIONS"); this puts every method of the route back."""
    allow = allow or {}

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        extra = [*_SECURITY_HEADERS, (b"x-request-id", request_id.encode())]
        if not scope["path"].startswith("/schema"):
            extra.append(_STRICT_CSP)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
                methods = allow.get(_route(scope)) if scope.get("method") == "OPTIONS" else None
                if methods is not None:
                    headers = [
                        (k, methods.encode() if k.lower() == b"allow" else v) for k, v in headers
                    ]
                message = {**message, "headers": [*headers, *extra]}
            await send(message)

        try:
            await app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            method, route = scope.get("method", "GET"), _route(scope)
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, route, str(status)).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)

    return wrapper


def in_progress_middleware(app: ASGIApp) -> ASGIApp:
    """Inside Litestar, after routing, where the route template is known."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        gauge: Any = metrics.HTTP_IN_PROGRESS.labels(scope.get("method", "GET"), _route(scope))
        gauge.inc()
        try:
            await app(scope, receive, send)
        finally:
            gauge.dec()

    return middleware
