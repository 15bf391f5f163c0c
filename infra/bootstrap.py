"""bootstrap(): everything a process needs, built once at its entry point.

The API (api/app.py), the projector (workers/projector.py), the queue worker
(workers/tasks.py) and the CLI (workers/cli.py) each call it where they start; no
module configures anything when it is imported, so tests build the same parts
around in-memory or stub stand-ins (`in_memory=True`, dramatiq's StubBroker).

Connections are opened on first use, not here: a process started while PostgreSQL
or Redis is down still starts, answers 503 and recovers by itself.
"""

from dataclasses import dataclass, field

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from psycopg_pool import ConnectionPool

from commands.application import GymLedger
from infra.clock import Clock, SystemClock
from infra.lazy import shared
from infra.mail import MailBackend, backend_from_settings
from infra.passwords import ARGON2, Argon2Passwords
from infra.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    broker: dramatiq.Broker
    passwords: Argon2Passwords = ARGON2
    in_memory: bool = False  # the write side on eventsourcing's POPO store (unit tests)
    _made: list[object] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ledger = shared(self._make_ledger)
        self.db_pool = shared(self._make_db_pool)
        self.mail_backend = shared(self._make_mail_backend)

    def _make_ledger(self) -> GymLedger:
        url = None if self.in_memory else self.settings.database_url
        ledger = GymLedger(url, self.settings.db_pool_size, passwords=self.passwords)
        self._made.append(ledger)
        return ledger

    def _make_db_pool(self) -> ConnectionPool:
        """Short transactions of the background workers (the mail outbox, expiry scans)."""
        pool = ConnectionPool(self.settings.database_url, min_size=1, max_size=4, open=True)
        self._made.append(pool)
        return pool

    def _make_mail_backend(self) -> MailBackend:
        return backend_from_settings(self.settings)

    def close(self) -> None:
        for made in reversed(self._made):
            if isinstance(made, GymLedger | ConnectionPool):
                made.close()
        self._made.clear()


def redis_broker(settings: Settings) -> RedisBroker:
    return RedisBroker(url=settings.redis_url, namespace=settings.queue_namespace)


def bootstrap(
    settings: Settings,
    clock: Clock | None = None,
    *,
    broker: dramatiq.Broker | None = None,
    passwords: Argon2Passwords = ARGON2,
    in_memory: bool = False,
) -> Runtime:
    """The parts of one process. `broker`: dramatiq's StubBroker in tests, else the
    Redis broker of REDIS_URL; it becomes dramatiq's global broker, which actors
    declared afterwards attach to."""
    broker = broker or redis_broker(settings)
    dramatiq.set_broker(broker)
    return Runtime(
        settings=settings,
        clock=clock or SystemClock(),
        broker=broker,
        passwords=passwords,
        in_memory=in_memory,
    )
