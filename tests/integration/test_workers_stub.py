"""The workers on dramatiq's StubBroker: PostgreSQL, Redis (the scheduler's lock) and
the test SMTP server are real, only the queue is in memory. Each test declares the
actors on a Runtime of its own, in a database of this module's own, so neither the
session's projector nor its worker sees these mails or jobs."""

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import psycopg
import pytest
import redis
from dramatiq.brokers.stub import StubBroker

from infra.bootstrap import Runtime, bootstrap
from infra.mail import Mail, SmtpBackend
from infra.settings import Settings
from tests.smtp import Inbox, free_port
from tests.stack import ServerStack
from workers.actors import Actors, declare_actors
from workers.expiry import SchedulerMiddleware, lock_key
from workers.mail import MailDeliveryFailed, deliver_batch, relay_outbox
from workers.projector import MailRelay

Stubbed = tuple[Runtime, Actors, StubBroker]


@pytest.fixture(scope="module")
def database(stack: ServerStack) -> Iterator[str]:
    url = stack.create_database()
    yield url
    stack.drop_database(url)


@pytest.fixture
def stubbed(settings: Settings, database: str) -> Iterator[Callable[..., Stubbed]]:
    """Makes a Runtime on a fresh StubBroker from the session's settings with `changes`
    (and this module's database, and a queue namespace of the test's own)."""
    made: list[Runtime] = []

    def make(**changes: Any) -> Stubbed:
        namespace = f"stub-{uuid.uuid4().hex[:10]}"
        own = dataclasses.replace(
            settings, database_url=database, queue_namespace=namespace, **changes
        )
        broker = StubBroker()
        runtime = bootstrap(own, broker=broker)
        made.append(runtime)
        return runtime, declare_actors(runtime), broker

    yield make
    for runtime in made:
        runtime.close()


@pytest.fixture
def consuming() -> Iterator[Callable[[dramatiq.Broker], dramatiq.Worker]]:
    """Starts a dramatiq worker on a broker; every one is stopped after the test."""
    started: list[dramatiq.Worker] = []

    def start(broker: dramatiq.Broker) -> dramatiq.Worker:
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def pending_mail(database_url: str, recipient: str) -> int:
    """An outbox row as the projector writes it: pending, never handed to the queue."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO mail_outbox (dedupe_key, gym_id, recipient, subject, body,"
            " correlation_id) VALUES (%s, gen_random_uuid(), %s, 'Stub', 'Hello', %s)"
            " RETURNING id",
            (f"stub-{recipient}", recipient, f"request-of-{recipient}"),
        ).fetchone()
    assert row is not None
    return int(row[0])


def outbox_row(database_url: str, mail_id: int) -> tuple[Any, ...]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status, attempts, last_error FROM mail_outbox WHERE id = %s", (mail_id,)
        ).fetchone()
    assert row is not None
    return row


def relay(runtime: Runtime, actors: Actors) -> int:
    settings = runtime.settings
    with psycopg.connect(settings.database_url) as conn:
        return relay_outbox(conn, actors.send_mail, settings.mail_requeue_after_seconds)


def test_relayed_mail_is_delivered_once_even_when_its_message_comes_twice(
    stubbed: Callable[..., Stubbed],
    consuming: Callable[[dramatiq.Broker], dramatiq.Worker],
    inbox: Inbox,
) -> None:
    runtime, actors, broker = stubbed()
    recipient = f"stub-{uuid.uuid4().hex[:12]}@example.com"
    mail_id = pending_mail(runtime.settings.database_url, recipient)

    assert relay(runtime, actors) == 1
    assert relay(runtime, actors) == 0  # handed over once
    queued = [dramatiq.Message.decode(data) for data in broker.queues["mail"].queue]
    assert [(m.actor_name, m.args) for m in queued] == [("send_mail", ([mail_id],))]
    assert queued[0].options["request_id"] == f"request-of-{recipient}"

    worker = consuming(broker)
    broker.join("mail")
    worker.join()
    assert len(inbox.to(recipient)) == 1
    assert outbox_row(runtime.settings.database_url, mail_id)[:2] == ("sent", 1)

    # A redelivered message, here in the one-id form queued before batches: the outbox
    # row says it is sent, nothing more goes out.
    actors.send_mail.send(mail_id)
    broker.join("mail")
    worker.join()
    assert len(inbox.to(recipient)) == 1
    assert outbox_row(runtime.settings.database_url, mail_id)[:2] == ("sent", 1)


def test_failing_smtp_is_retried_then_the_mail_is_dead_lettered(
    stubbed: Callable[..., Stubbed],
    consuming: Callable[[dramatiq.Broker], dramatiq.Worker],
    inbox: Inbox,
) -> None:
    # Nothing listens on this port: every connection is refused, a real failure.
    runtime, actors, broker = stubbed(smtp_port=free_port(), mail_max_retries=1)
    recipient = f"stub-down-{uuid.uuid4().hex[:12]}@example.com"
    mail_id = pending_mail(runtime.settings.database_url, recipient)
    assert relay(runtime, actors) == 1

    worker = consuming(broker)
    broker.join("mail")  # waits out the retry's backoff (the delay queue) too
    worker.join()
    status, attempts, last_error = outbox_row(runtime.settings.database_url, mail_id)
    assert status == "failed"
    assert attempts == runtime.settings.mail_max_retries + 1  # first try plus every retry
    assert "refused" in last_error.lower()
    assert inbox.to(recipient) == []


class WatchedScheduler(SchedulerMiddleware):
    """The real scheduler, telling the test when it has taken its first turn."""

    def __init__(self, runtime: Runtime, actors: Actors) -> None:
        settings = runtime.settings
        # A long interval: every scheduler's first turn falls in the same interval.
        super().__init__(
            settings.redis_url, lock_key(settings.queue_namespace), 30.0, actors.expire_memberships
        )
        self.turns: list[bool] = []
        self.took_turn = threading.Event()

    def schedule_once(self, client: redis.Redis) -> bool:
        won = super().schedule_once(client)
        self.turns.append(won)
        self.took_turn.set()
        return won


class CountsRuns(dramatiq.Middleware):
    def __init__(self) -> None:
        self.runs: list[str] = []

    def after_process_message(self, broker: dramatiq.Broker, message: Any, **_: Any) -> None:
        self.runs.append(message.actor_name)


def test_two_schedulers_enqueue_the_expiry_job_once_per_interval(
    stubbed: Callable[..., Stubbed], consuming: Callable[[dramatiq.Broker], dramatiq.Worker]
) -> None:
    runtime, actors, broker = stubbed()
    schedulers = [WatchedScheduler(runtime, actors), WatchedScheduler(runtime, actors)]
    counted = CountsRuns()
    for middleware in (*schedulers, counted):
        broker.add_middleware(middleware)
    client = redis.Redis.from_url(runtime.settings.redis_url)
    try:
        worker = consuming(broker)  # boots both scheduler threads
        assert all(s.took_turn.wait(10) for s in schedulers)
        broker.join("scheduled")
        worker.join()
        assert sorted(s.turns[0] for s in schedulers) == [False, True]
        assert counted.runs == ["expire_memberships"]
    finally:
        client.delete(lock_key(runtime.settings.queue_namespace))


class CountingSmtp(SmtpBackend):
    """The real SMTP backend, counting the sessions it opens."""

    sessions = 0

    def _session(self) -> Any:
        self.sessions += 1
        return super()._session()


def test_a_batch_is_one_message_one_smtp_session_and_a_refusal_fails_only_its_mail(
    stubbed: Callable[..., Stubbed], inbox: Inbox
) -> None:
    runtime, actors, broker = stubbed()
    url, tag = runtime.settings.database_url, uuid.uuid4().hex[:10]
    recipients = [f"batch-{tag}-{i}@example.com" for i in range(3)]
    recipients.append(f"refuse-{tag}@example.com")  # the test server refuses it
    ids = [pending_mail(url, r) for r in recipients]

    relay(runtime, actors)
    queued = [dramatiq.Message.decode(data) for data in broker.queues["mail"].queue]
    assert ("send_mail", (ids,)) in [(m.actor_name, m.args) for m in queued]

    backend = CountingSmtp(runtime.settings)
    with psycopg.connect(url) as conn, pytest.raises(MailDeliveryFailed, match="1 of 4"):
        deliver_batch(conn, ids, runtime.settings, backend)
    assert backend.sessions == 1
    assert [len(inbox.to(r)) for r in recipients] == [1, 1, 1, 0]
    rows = [outbox_row(url, mail_id)[:2] for mail_id in ids]
    assert rows == [("sent", 1), ("sent", 1), ("sent", 1), ("pending", 1)]

    # The retry sends only what is still pending, again in one session.
    with psycopg.connect(url) as conn, pytest.raises(MailDeliveryFailed, match="1 of 1"):
        deliver_batch(conn, ids, runtime.settings, backend)
    assert backend.sessions == 2
    assert [len(inbox.to(r)) for r in recipients[:3]] == [1, 1, 1]


def test_a_mail_that_breaks_the_session_fails_alone_and_the_rest_go_on_in_a_new_one(
    settings: Settings, inbox: Inbox
) -> None:
    """The test server never answers "timeout-" recipients: that mail times out, the
    session is dropped, and the mails after it are still sent (they used to fail with
    it, on every retry of the batch, until all were dead-lettered)."""
    tag = uuid.uuid4().hex[:10]
    recipients = [f"timeout-{tag}@example.com", f"after-{tag}@example.com"]
    recipients += [f"refuse-{tag}@example.com", f"last-{tag}@example.com"]
    mails = [Mail(key=f"k-{r}", recipient=r, subject="S", body="B") for r in recipients]
    backend = CountingSmtp(settings)
    results = backend.send_many(mails)
    assert [type(e).__name__ for e in results] == [
        "SMTPServerDisconnected",  # smtplib's word for a reply that timed out
        "NoneType",
        "SMTPRecipientsRefused",
        "NoneType",
    ]
    assert "timed out" in str(results[0])
    assert backend.sessions == 2
    assert [len(inbox.to(r)) for r in recipients] == [0, 1, 0, 1]


def test_the_relay_hands_over_the_mail_of_batches_applied_while_it_lingers(
    stubbed: Callable[..., Stubbed],
) -> None:
    """Three batches' mails (three wake-ups) inside one linger go as one message."""
    runtime, actors, broker = stubbed()
    url, tag = runtime.settings.database_url, uuid.uuid4().hex[:10]
    relay_thread = MailRelay(url, actors.send_mail, requeue_after=300, linger=4.0)
    relay_thread.active.set()
    relay_thread.start()
    try:
        ids = []
        for i in range(3):  # as the projector does after each batch: a row, a wake-up
            ids.append(pending_mail(url, f"linger-{tag}-{i}@example.com"))
            relay_thread.wake_up.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not queued_ids(broker) >= set(ids):
            time.sleep(0.05)
    finally:
        relay_thread.finish()
    carrying = [m.args[0] for m in queued_messages(broker) if set(ids) & set(m.args[0])]
    assert len(carrying) == 1, carrying
    assert set(ids) <= set(carrying[0])


def queued_messages(broker: StubBroker) -> list[dramatiq.Message[Any]]:
    return [dramatiq.Message.decode(data) for data in list(broker.queues["mail"].queue)]


def queued_ids(broker: StubBroker) -> set[int]:
    return {i for m in queued_messages(broker) for i in m.args[0]}
