"""The API's projection watcher against a real server: it hears the projector's
notifications in order, re-reads the position it may have missed, and comes back by
itself when its connection is killed."""

import asyncio
import uuid

import psycopg

from api.consistency import ProjectionWatcher
from api.gym_cache import OpenGyms
from infra.db import GYM_CHANGED_CHANNEL, PROJECTED_CHANNEL
from projections.gyms import GymAccess
from projections.read_model import READ_MODEL

ACCESS = GymAccess(timezone="UTC", token_generation=0, revoked_auditor_tokens=frozenset())


async def nothing() -> None:
    pass


async def notify(url: str, *notes: tuple[str, str]) -> None:
    """The notes in one transaction, as the projector sends a batch's."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for channel, payload in notes:
            await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


async def listening(url: str, watcher: ProjectionWatcher) -> None:
    """Until the watcher's connection is listening (its LISTEN has committed)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for _ in range(200):
            found = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT position%%'"
                " AND datname = current_database()"
            )
            row = await found.fetchone()
            if row and row[0] > 0:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the watcher never connected")


async def test_notifications_move_the_position_after_forgetting_the_gym(
    fresh_database: str,
) -> None:
    gyms = OpenGyms()
    gym_id = uuid.uuid4()
    watcher = ProjectionWatcher(fresh_database, READ_MODEL, gyms, after_reconnect=nothing)
    await watcher.start()
    try:
        await listening(fresh_database, watcher)
        gyms.remember(gym_id, ACCESS, gyms.epoch)
        waiting = asyncio.create_task(watcher.wait_for(41, timeout=10))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await notify(fresh_database, (GYM_CHANGED_CHANNEL, str(gym_id)), (PROJECTED_CHANNEL, "41"))
        assert await waiting
        assert gyms.access(gym_id) is None  # forgotten before the position moved past it
        assert not await watcher.wait_for(42, timeout=0.3)
    finally:
        await watcher.stop()


async def test_a_killed_connection_comes_back_and_is_heard_again(fresh_database: str) -> None:
    reconnected = asyncio.Event()

    async def after_reconnect() -> None:
        reconnected.set()

    gyms = OpenGyms()
    watcher = ProjectionWatcher(fresh_database, READ_MODEL, gyms, after_reconnect=after_reconnect)
    await watcher.start()
    try:
        await listening(fresh_database, watcher)
        gym_id = uuid.uuid4()
        gyms.remember(gym_id, ACCESS, gyms.epoch)
        async with await psycopg.AsyncConnection.connect(fresh_database, autocommit=True) as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        await asyncio.wait_for(reconnected.wait(), timeout=10)
        assert gyms.access(gym_id) is None  # what it may have missed is not trusted
        await listening(fresh_database, watcher)
        await notify(fresh_database, (PROJECTED_CHANNEL, "7"))
        assert await watcher.wait_for(7, timeout=10)
    finally:
        await watcher.stop()
