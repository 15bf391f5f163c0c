"""Expiry of memberships: the job's body (the `expire_memberships` actor, see
workers/actors.py), and the scheduler that enqueues it.

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

from commands.application import GymLedger, StreamConflict
from commands.context import CommandContext
from commands.customers import ExpireMembership
from domain.errors import NotFound
from infra import metrics
from infra.clock import Clock
from projections.customers import due_for_expiry

log = logging.getLogger("gymledger.expiry")


def lock_key(queue_namespace: str) -> str:
    """The Redis key the schedulers of one deployment (QUEUE_NAMESPACE) compete for."""
    return f"{queue_namespace}:scheduler:expire-memberships"


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
            result = ledger.handle(ExpireMembership(customer_id=customer_id), ctx)
        except (StreamConflict, NotFound):
            continue  # changed or removed meanwhile; the next run looks again
        recorded += result.position > 0
    metrics.EXPIRY_RUNS.inc()
    metrics.CUSTOMERS_EXPIRED.inc(recorded)
    log.info("expiry run", extra={"due": len(due), "recorded": recorded})
    return recorded


def try_schedule(
    client: redis.Redis,
    key: str,
    interval_seconds: float,
    job: dramatiq.Actor[[], None],
) -> bool:
    """Enqueue `job` if no scheduler did in the current interval."""
    if client.set(key, "1", nx=True, px=int(interval_seconds * 1000)):
        job.send()
        return True
    return False


class SchedulerMiddleware(dramatiq.Middleware):
    """Starts the scheduler thread when a worker process boots."""

    def __init__(
        self, redis_url: str, key: str, interval_seconds: float, job: dramatiq.Actor[[], None]
    ) -> None:
        self.redis_url = redis_url
        self.key = key
        self.interval = interval_seconds
        self.job = job
        self.stop = threading.Event()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.Thread(target=self._run, name="expiry-scheduler", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.stop.set()

    def schedule_once(self, client: redis.Redis) -> bool:
        """One turn of the scheduler: whether it enqueued the job."""
        try:
            return try_schedule(client, self.key, self.interval, self.job)
        except redis.RedisError:
            log.warning("scheduler cannot reach Redis; expiry is delayed", exc_info=True)
            return False

    def _run(self) -> None:
        client: redis.Redis = redis.Redis.from_url(self.redis_url)
        # Check a few times per interval so a crashed scheduler's turn is taken soon.
        tick = max(0.5, min(self.interval / 4, 15.0))
        while not self.stop.is_set():
            self.schedule_once(client)
            self.stop.wait(tick)
