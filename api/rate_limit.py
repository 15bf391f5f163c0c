"""Fixed-window rate limits in Redis, shared by every API process.

Used for login: per email (slows guessing one account's password) and per client
address (slows spraying many accounts); for password changes, per gym (a stolen
token must not become a way to guess the password); and, where configured, for
signups and auditor-token grants per client address (slows mass account and token
creation). If Redis is unreachable the limit fails open: logging in matters more
than throttling for the minutes Redis is down.
"""

import hashlib
import logging
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from litestar import Request
from litestar.exceptions import HTTPException

if TYPE_CHECKING:  # api.state builds on this module (the verification gate's 429)
    from api.state import AppState

log = logging.getLogger("gymledger.ratelimit")


class TooManyRequests(HTTPException):
    status_code = 429


async def hit(
    client: aioredis.Redis,
    namespace: str,
    key: str,
    limit: int,
    window_seconds: int,
    detail: str = "Too many login attempts; try again later",
) -> None:
    """Count one attempt under `key`; raise 429 with Retry-After once over `limit`.
    A limit of 0 means no limit (nothing is counted)."""
    if limit <= 0:
        return
    name = f"{namespace}:ratelimit:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    try:
        async with client.pipeline(transaction=True) as pipe:
            # SET NX starts the window (EXPIRE ... NX needs Redis 7; this works on 6).
            pipe.set(name, 0, ex=window_seconds, nx=True)
            pipe.incr(name)
            pipe.ttl(name)
            _, count, ttl = await pipe.execute()
    except aioredis.RedisError:
        log.warning("rate limiter unavailable; allowing the attempt", exc_info=True)
        return
    if int(count) > limit:
        retry_after = max(1, int(ttl))
        raise TooManyRequests(detail=detail, headers={"Retry-After": str(retry_after)})


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


async def limit_per_address(
    state: "AppState", request: Request[Any, Any, Any], action: str, detail: str
) -> None:
    """SIGNUP_ATTEMPTS_PER_ADDRESS attempts at `action` per client address and login window."""
    s = state.settings
    key = f"{action}:address:{client_address(request)}"
    await hit(
        state.redis, s.queue_namespace, key, s.signup_attempts_per_address,
        s.login_window_seconds, detail,
    )  # fmt: skip
