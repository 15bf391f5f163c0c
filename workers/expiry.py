"""Expiry of memberships: a dramatiq job, and the scheduler that enqueues it.

The job records `MembershipExpired` for every customer whose membership ended
before today in their gym's timezone. It is safe to run twice at once: the
domain records each membership end once, and optimistic concurrency lets only
one of two racing writers append.

Every worker process runs a scheduler thread, but each interval only one of them
wins a Redis lock (SET NX with the interval as expiry) and enqueues the job, so
several workers behave like one scheduler and the job runs once per interval.
"""

import logging
import threading

import dramatiq
import psycopg
import redis
from dramatiq.middleware import CurrentMessage

from commands.application import GymLedger, StreamConflict
from commands.context import CommandContext
from commands.customers import ExpireMembership, expire_membership
from domain.errors import NotFound
from infra import metrics
from infra.clock import Clock, SystemClock
from infra.lazy import shared
from projections.customers import due_for_expiry
from workers.mail import settings

log = logging.getLogger("gymledger.expiry")
LOCK_KEY = f"{settings.queue_namespace}:scheduler:expire-memberships"


def expire_due_memberships(
    ledger: GymLedger, database_url: str, clock: Clock, causation_id: str | None = None
) -> int:
    """Record every lapsed membership that is not recorded yet; returns how many.
    `causation_id`: what started this run (the job's message id), in each event."""
    with psycopg.connect(database_url) as conn:
        due = due_for_expiry(conn, clock.now())
    recorded = 0
    ctx = CommandContext.system(clock, causation_id)
    for customer_id in due:
        try:
            result = expire_membership(ledger, ExpireMembership(customer_id=customer_id), ctx)
        except (StreamConflict, NotFound):
            continue  # changed or removed meanwhile; the next run looks again
        recorded += result.position > 0
    metrics.EXPIRY_RUNS.inc()
    metrics.CUSTOMERS_EXPIRED.inc(recorded)
    log.info("expiry run", extra={"due": len(due), "recorded": recorded})
    return recorded


@shared
def _ledger() -> GymLedger:
    return GymLedger(settings.database_url, pool_size=2)


@dramatiq.actor(queue_name="scheduled", max_retries=3, time_limit=600_000)
def expire_memberships() -> None:
    message = CurrentMessage.get_current_message()  # None without that middleware
    causation = None if message is None else message.message_id
    expire_due_memberships(_ledger(), settings.database_url, SystemClock(), causation)


def try_schedule(client: redis.Redis, interval_seconds: float) -> bool:
    """Enqueue the job if no scheduler did in the current interval."""
    if client.set(LOCK_KEY, "1", nx=True, px=int(interval_seconds * 1000)):
        expire_memberships.send()
        return True
    return False


class SchedulerMiddleware(dramatiq.Middleware):
    """Starts the scheduler thread when a worker process boots."""

    def __init__(self, interval_seconds: float) -> None:
        self.interval = interval_seconds
        self.stop = threading.Event()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.Thread(target=self._run, name="expiry-scheduler", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.stop.set()

    def _run(self) -> None:
        client: redis.Redis = redis.Redis.from_url(settings.redis_url)
        # Check a few times per interval so a crashed scheduler's turn is taken soon.
        tick = max(0.5, min(self.interval / 4, 15.0))
        while not self.stop.is_set():
            try:
                try_schedule(client, self.interval)
            except redis.RedisError:
                log.warning("scheduler cannot reach Redis; expiry is delayed", exc_info=True)
            self.stop.wait(tick)
