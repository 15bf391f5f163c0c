"""Chain verification for owners and auditors, kept from ever starving commands.

A verification reads and hashes every event of one gym: seconds of work on a large
gym, offered to every owner (signup is free). So each API process runs at most
`CONCURRENT` of them, in threads of their own (not the pool commands use) on a pool
of their own whose statements time out, queues a few more, and refuses the rest
with 429; a per-gym limit in Redis (AUDIT_VERIFICATIONS_PER_MINUTE) bounds what one
gym can ask for across processes.
"""

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import psycopg
from psycopg_pool import ConnectionPool

from api.rate_limit import TooManyRequests

T = TypeVar("T")
CONCURRENT = 1
WAITING = 16
STATEMENT_TIMEOUT_MS = 30_000


class VerificationGate:
    def __init__(self, database_url: str) -> None:
        self._limiter = anyio.CapacityLimiter(CONCURRENT)
        self._queued = 0
        self.pool: ConnectionPool[Any] = ConnectionPool(
            database_url,
            min_size=0,
            max_size=CONCURRENT,
            open=False,
            timeout=5.0,
            kwargs={"autocommit": True, "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
        )

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    async def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        if self._queued >= CONCURRENT + WAITING:
            raise TooManyRequests(
                detail="Too many verifications running; try again shortly",
                headers={"Retry-After": "1"},
            )
        self._queued += 1
        try:
            return await anyio.to_thread.run_sync(
                self._with_connection, work, limiter=self._limiter
            )
        finally:
            self._queued -= 1

    def _with_connection(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        with self.pool.connection() as conn:
            return work(conn)
