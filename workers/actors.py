"""The dramatiq actors, declared on a Runtime's broker by the process that needs them.

Nothing here runs at import: `declare_actors(runtime)` is called once per broker by
each entry point (workers/tasks.py for the worker, workers/projector.py whose relay
enqueues mail) and by the tests, on Redis or on dramatiq's StubBroker. dramatiq
refuses a second actor of the same name on one broker, so call it once per Runtime.
"""

from dataclasses import dataclass

import dramatiq
from dramatiq.middleware import CurrentMessage

from infra.bootstrap import Runtime
from workers import expiry, mail, membership_jobs
from workers.mail import SendMail
from workers.task_middleware import DiesWithMainProcess, TaskObservability


@dataclass(frozen=True)
class Actors:
    send_mail: SendMail
    expire_memberships: dramatiq.Actor[[], None]


def declare_actors(runtime: Runtime) -> Actors:
    settings = runtime.settings

    @dramatiq.actor(
        actor_name="send_mail",
        queue_name="mail",
        broker=runtime.broker,
        max_retries=settings.mail_max_retries,
        min_backoff=1_000,
        max_backoff=300_000,
    )
    def send_mail(mail_ids: int | list[int]) -> None:
        """A batch of outbox ids (the relay's); one id from a message queued before
        batches, still delivered during an upgrade."""
        batch = [mail_ids] if isinstance(mail_ids, int) else mail_ids
        with runtime.db_pool().connection() as conn:
            mail.deliver_batch(conn, batch, settings, runtime.mail_backend())

    @dramatiq.actor(
        actor_name="expire_memberships",
        queue_name="scheduled",
        broker=runtime.broker,
        max_retries=3,
        time_limit=600_000,
    )
    def expire_memberships() -> None:
        message = CurrentMessage.get_current_message()  # None without that middleware
        causation = None if message is None else message.message_id
        ledger, url, clock = runtime.ledger(), settings.database_url, runtime.clock
        expiry.expire_due_memberships(ledger, url, clock, causation)
        membership_jobs.run_membership_passes(ledger, url, clock, causation)

    return Actors(send_mail=send_mail, expire_memberships=expire_memberships)


def scheduler(runtime: Runtime, actors: Actors) -> expiry.SchedulerMiddleware:
    """The expiry scheduler of one worker process, competing in this deployment's namespace."""
    settings = runtime.settings
    return expiry.SchedulerMiddleware(
        settings.redis_url,
        expiry.lock_key(settings.queue_namespace),
        settings.expiry_interval_seconds,
        actors.expire_memberships,
    )


def add_worker_middleware(runtime: Runtime, actors: Actors) -> None:
    """What a consuming worker adds to its broker, before dramatiq.Worker starts."""
    broker = runtime.broker
    broker.add_middleware(DiesWithMainProcess())
    broker.add_middleware(CurrentMessage())  # the expiry job's causation id
    broker.add_middleware(scheduler(runtime, actors))
    # Last, so the Retries middleware has already decided whether a failure is final.
    broker.add_middleware(TaskObservability(runtime.settings.log_level))
