"""Read-your-writes: wait until the projector has applied a given log position.

One LISTEN connection per API process follows the projector's NOTIFY messages;
waiting requests park on futures, so waiting costs no database round trips. The
position is also re-read every second in case a notification was missed while
the listener reconnected. The same connection hears which gyms changed, and
clears them from the process's gym cache before the position moves past them.

The watcher must never stop or hang: every read-your-writes wait in the process
depends on it. Any error reconnects, a connection that stops answering (a
connect or read cut off by a server restart) is dropped after STALL_SECONDS, and
after a reconnect the read pool is told to drop connections the restart broke,
instead of failing one request for each of them later.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from api.gym_cache import OpenGyms
from infra.db import GYM_CHANGED_CHANNEL, PROJECTED_CHANNEL
from projections.engine import projection_position_async

log = logging.getLogger("gymledger.consistency")
REFRESH_SECONDS = 1.0
STALL_SECONDS = 5 * REFRESH_SECONDS


class ProjectionWatcher:
    def __init__(
        self,
        database_url: str,
        projection: str,
        gyms: OpenGyms,
        after_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        self.database_url = database_url
        self.projection = projection
        self.gyms = gyms
        self.after_reconnect = after_reconnect
        self.position = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="projection-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_for(self, position: int, timeout: float) -> bool:  # noqa: ASYNC109
        """True once the read model includes `position`; False after `timeout` seconds."""
        if position <= self.position:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (position, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _advance(self, position: int) -> None:
        if position <= self.position:
            return
        self.position = position
        for waited, future in self._waiters:
            if waited <= position and not future.done():
                future.set_result(None)

    async def _read_position(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._advance(await projection_position_async(conn, self.projection))

    def _heard(self, channel: str, payload: str) -> None:
        if channel == GYM_CHANGED_CHANNEL:
            self.gyms.forget(UUID(payload))
        else:
            self._advance(int(payload))

    def _on_readable(self, conn: psycopg.AsyncConnection[Any], lost: asyncio.Future[None]) -> None:
        """The event loop's callback when the listening socket has data: the
        notifications in it, in the order they were sent (a gym's change before the
        position that follows it). Read straight from libpq: psycopg's `notifies()`
        generator set up and tore down a wait per notification, 6% of an API process's
        CPU under commands (bench/README.md)."""
        pgconn = conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error as error:  # the server went away
            if not lost.done():
                lost.set_exception(error)
            return
        while (note := pgconn.notifies()) is not None:
            self._heard(note.relname.decode(), note.extra.decode())

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Hears notifications as they come, and every REFRESH_SECONDS re-reads the
        position (with the reader off: psycopg waits on the same socket for its own
        answer, and hands what arrives meanwhile to `_heard` as a notify handler)."""
        loop = asyncio.get_running_loop()
        conn.add_notify_handler(lambda note: self._heard(note.channel, note.payload))
        socket = conn.pgconn.socket  # read once: a lost connection has none to ask for
        while True:
            async with asyncio.timeout(STALL_SECONDS):  # a server that stopped answering
                await self._read_position(conn)
            lost: asyncio.Future[None] = loop.create_future()
            loop.add_reader(socket, self._on_readable, conn, lost)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost, REFRESH_SECONDS)  # raises once lost
            finally:
                loop.remove_reader(socket)

    async def _follow(self) -> None:
        lost = False
        while True:
            try:
                async with asyncio.timeout(STALL_SECONDS):
                    conn = await psycopg.AsyncConnection.connect(self.database_url, autocommit=True)
                async with conn:
                    for channel in (PROJECTED_CHANNEL, GYM_CHANGED_CHANNEL):
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    # Changes announced before LISTEN took effect were not heard.
                    self.gyms.forget_all()
                    if lost:
                        await self.after_reconnect()
                        lost = False
                    await self._listen(conn)
            except Exception:
                lost = True
                self.gyms.forget_all()  # nothing is heard until the listener is back
                log.warning("projection watcher lost its connection; retrying", exc_info=True)
                await asyncio.sleep(1.0)
