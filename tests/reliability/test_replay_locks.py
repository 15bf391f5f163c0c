"""`replay --verify` and the blue-green build only ever read the live tables.

A live system on a log of EVENTS events (the real projector process and the API) takes
commands throughout, while pg_locks is sampled for the operation's backends (found by
the application_name they connect with) on relations of the live schema: nothing but
ACCESS SHARE may show up. A stronger lock (the SHARE lock a scratch `CREATE INDEX`
once took on `mail_outbox`) stalls the projector's outbox insert, and with it every
command's read-your-writes wait, for the whole replay. Command latency with and
without the operation running is printed (figures, not assertions).
"""

import contextlib
import dataclasses
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from statistics import median, quantiles
from typing import Any

import psycopg
import pytest
import redis
from litestar.testing import TestClient

from infra.event_codec import CODEC
from projections.engine import Projector
from projections.mail_outbox import MailOutboxProjection
from projections.read_model import READ_MODEL, read_model_projector
from tests.conftest import bearer, signup_and_login
from tests.factories import synthetic_log
from tests.integration.helpers import head_position, index_definitions, wait_projected
from tests.processes import spawn, stop
from tests.reliability.scale import size
from tests.stack import ServerStack

EVENTS = size(3_000, 100_000)
SWAP = "gymledger-rebuild-swap"
LIVE_SCHEMA = "public"

# Every lock a backend of one of `names` holds or waits for on a relation of the live schema.
_LOCKS = """
SELECT a.application_name, c.relname, l.mode
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND n.nspname = %s AND a.application_name = ANY(%s)
"""


class LockSampler(threading.Thread):
    """Samples pg_locks as often as it can until stopped."""

    def __init__(self, database_url: str, application_names: list[str]) -> None:
        super().__init__(name="lock-sampler", daemon=True)
        self.database_url = database_url
        self.names = application_names
        self.seen: Counter[tuple[str, str, str]] = Counter()  # (application, relation, mode)
        self.first_seen: float | None = None
        self.last_seen: float | None = None
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(
            self.database_url, autocommit=True, application_name="gymledger-test-locks"
        ) as conn:
            while not self.halt.is_set():
                rows = conn.execute(_LOCKS, (LIVE_SCHEMA, self.names)).fetchall()
                self.samples += 1
                if rows:
                    now = time.monotonic()
                    self.first_seen = self.first_seen or now
                    self.last_seen = now
                for application, relation, mode in rows:
                    self.seen[(str(application), str(relation), str(mode))] += 1
                self.halt.wait(0.005)

    def stronger_than_access_share(self, application: str) -> dict[tuple[str, str], int]:
        return {
            (relation, mode): n
            for (app, relation, mode), n in self.seen.items()
            if app == application and mode != "AccessShareLock"
        }

    def held_by(self, application: str) -> set[str]:
        return {relation for (app, relation, _), _ in self.seen.items() if app == application}


@dataclass
class CommandLoad:
    """POSTs customers one after the other, about 20 a second, timing each."""

    client: TestClient[Any]
    headers: dict[str, str]
    timings: list[tuple[float, float, int]] = field(default_factory=list)  # start, s, status
    halt: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            body = {"first_name": "Load", "last_name": str(i), "email": f"l{i}@example.com"}
            started = time.monotonic()
            status = self.client.post("/api/v1/customers", headers=self.headers, json=body)
            self.timings.append((started, time.monotonic() - started, status.status_code))
            i += 1
            self.halt.wait(0.05)

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.timings) < count:
            assert time.monotonic() < deadline, f"only {len(self.timings)} commands in {timeout}s"
            time.sleep(0.05)


@dataclass
class Live:
    database_url: str
    client: TestClient[Any]
    headers: dict[str, str]
    env: dict[str, str]


@pytest.fixture(scope="module")
def live(stack: ServerStack, settings: Any) -> Iterator[Live]:
    """A database with a log of EVENTS events and its read model up to date, served by the
    real projector process and the API from then on.

    The history is projected here without the outbox, as if its mail had been sent and
    archived long ago: its welcome mails (three in four events) would only slow the
    set-up down, and no rebuild reads the outbox. Mail of the commands the tests send
    goes through the outbox as always."""
    from api.app import create_app

    url = stack.create_database()
    namespace = f"replay-locks-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": url, "QUEUE_NAMESPACE": namespace}
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(stack.drop_database, url)
        cleanup.callback(_forget_queues, settings.redis_url, namespace)
        synthetic_log(url, EVENTS)
        projections = read_model_projector(settings.key_ring()).projections
        history = [p for p in projections if not isinstance(p, MailOutboxProjection)]
        projector = Projector(READ_MODEL, history, CODEC, batch_size=2000)
        with psycopg.connect(url) as conn:
            projector.ensure_position_row(conn)
            projector.catch_up(conn)
        cleanup.callback(stop, spawn(["workers.projector"], env))
        api = create_app(dataclasses.replace(settings, database_url=url))
        client = cleanup.enter_context(TestClient(api, raise_server_exceptions=False))
        _, token = signup_and_login(client)
        yield Live(url, client, bearer(token), env)


def _forget_queues(redis_url: str, namespace: str) -> None:
    queue = redis.Redis.from_url(redis_url)
    for key in queue.scan_iter(match=f"{namespace}*"):
        queue.delete(key)


def _figures(name: str, load: CommandLoad, sampler: LockSampler) -> None:
    assert sampler.first_seen is not None
    assert sampler.last_seen is not None
    before = [s for started, s, _ in load.timings if started < sampler.first_seen]
    during = [
        s for started, s, _ in load.timings if sampler.first_seen <= started <= sampler.last_seen
    ]

    def line(label: str, values: list[float]) -> str:
        if len(values) < 2:
            return f"{label}: {len(values)} commands"
        p95 = quantiles(values, n=20, method="inclusive")[-1]
        return (
            f"{label}: {len(values)} commands, median {median(values) * 1000:.0f} ms,"
            f" p95 {p95 * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
        )

    seconds = sampler.last_seen - sampler.first_seen
    print(  # the figures the report quotes (pytest -s)
        f"\n{name} of {EVENTS} events, {seconds:.1f} s, {sampler.samples} lock samples;"
        f"\n  {line('without', before)}\n  {line('during', during)}"
    )


def _run_under_load(live: Live, args: list[str], watched: list[str]) -> tuple[Any, Any, Any]:
    load = CommandLoad(live.client, live.headers)
    writer = threading.Thread(target=load.run, name="command-load")
    sampler = LockSampler(live.database_url, watched)
    writer.start()
    try:
        load.wait_for(40)  # the latency without the operation
        sampler.start()
        result = subprocess.run(
            [sys.executable, "-m", "workers.cli", *args],
            env=live.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        sampler.halt.set()
        sampler.join()
    finally:
        load.halt.set()
        writer.join()
    return result, load, sampler


def test_replay_verify_takes_no_lock_beyond_access_share_on_live_tables(live: Live) -> None:
    result, load, sampler = _run_under_load(live, ["replay", "--verify"], ["gymledger-replay"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "read tables equal the replay" in result.stdout
    # The sampler watched the replay at work: it reads the log under ACCESS SHARE.
    assert "gymledger_events" in sampler.held_by("gymledger-replay"), sampler.seen
    assert sampler.stronger_than_access_share("gymledger-replay") == {}
    assert {status for _, _, status in load.timings} == {201}
    _figures("replay --verify", load, sampler)


def test_blue_green_build_takes_no_lock_beyond_access_share_on_live_tables(live: Live) -> None:
    indexes = index_definitions(live.database_url)
    result, load, sampler = _run_under_load(
        live,
        ["projections", "rebuild", "--blue-green"],
        ["gymledger-rebuild", SWAP],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "blue/green" in result.stdout
    assert "gymledger_events" in sampler.held_by("gymledger-rebuild"), sampler.seen
    assert sampler.stronger_than_access_share("gymledger-rebuild") == {}
    # Only the short swap at the end (its own connection) locks live tables harder.
    assert {status for _, _, status in load.timings} == {201}
    assert index_definitions(live.database_url) == indexes
    # Writes after the swap land in the new tables and read back at once.
    late = {"first_name": "After", "last_name": "Swap", "email": "after-swap@example.com"}
    created = live.client.post("/api/v1/customers", headers=live.headers, json=late)
    assert created.status_code == 201
    read = live.client.get(f"/api/v1/customers/{created.json()['id']}", headers=live.headers)
    assert read.status_code == 200
    wait_projected(live.database_url, head_position(live.database_url))
    _figures("blue-green build", load, sampler)
    swap = sorted({mode for (_, mode) in sampler.stronger_than_access_share(SWAP)})
    print(f"  the swap's locks on live relations, when sampled: {swap or 'none seen'}")
