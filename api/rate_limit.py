"""Fixed-window rate limits in Redis, shared by every API process.

Used for login: per email (slows guessing one account's password) and per client
address (slows spraying many accounts). If Redis is unreachable the limit fails
open: logging in matters more than throttling for the minutes Redis is down.
"""

import hashlib
import logging

import redis.asyncio as aioredis
from litestar.exceptions import HTTPException

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
    """Count one attempt under `key`; raise 429 with Retry-After once over `limit`."""
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
        raise TooManyRequests(
            detail=detail,
            headers={"Retry-After": str(retry_after)},
        )
