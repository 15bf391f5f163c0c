"""The projector against real PostgreSQL: ordering under concurrency, rebuilds.
(Killed again and again: tests/reliability/test_kills.py.)"""

import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow

from commands.application import GymLedger
from commands.context import CommandContext
from infra.event_codec import CODEC
from projections.engine import Projection, Projector, Recorded
from tests.integration.helpers import (
    gyms_table,
    head_position,
    index_definitions,
    register,
    rename_many,
    replayed_gyms,
    wait_projected,
)


class Recorder(Projection):
    """A projection that remembers what it saw, in order."""

    tables: tuple[str, ...] = ()
    rebuildable = True

    def __init__(self) -> None:
        self.seen: list[tuple[UUID, int]] = []

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        self.seen.append((recorded.stream_id, recorded.version))


def test_tailing_reader_never_skips_or_repeats_under_concurrent_writers(
    ledger: GymLedger, settings: Any
) -> None:
    gym_ids = [register(ledger).id for _ in range(16)]
    start = head_position(settings.database_url)
    recorder = Recorder()
    tail = Projector(f"stress-{time.time_ns()}", [recorder], CODEC, batch_size=7)
    done = threading.Event()

    def follow() -> None:
        with psycopg.connect(settings.database_url) as conn:
            tail.ensure_position_row(conn)
            conn.execute(
                "UPDATE projector_positions SET position = %s WHERE name = %s", (start, tail.name)
            )
            conn.commit()
            while not done.is_set():
                tail.run_batch(conn)
            tail.catch_up(conn)

    follower = threading.Thread(target=follow)
    follower.start()
    rename_many(ledger, gym_ids, count=400, workers=12)
    done.set()
    follower.join()
    with psycopg.connect(settings.database_url) as conn:
        committed = [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT originator_id, originator_version FROM gymledger_events"
                " WHERE notification_id > %s ORDER BY notification_id",
                (start,),
            )
        ]
    assert len(committed) > 100
    assert recorder.seen == committed  # same events, same order, none twice


def test_rebuild_reproduces_the_read_model_and_sends_no_mail(
    client: Any, ledger: GymLedger, settings: Any, inbox: Any
) -> None:
    # A few gyms through the API so the welcome mails go out for real first.
    from tests.conftest import signup_body

    emails = []
    for _ in range(3):
        body = signup_body()
        emails.append(body["email"])
        assert client.post("/api/v1/auth/signup", json=body).status_code == 201
    for address in emails:
        assert len(inbox.wait_for(address)) == 1
    wait_projected(settings.database_url, head_position(settings.database_url))
    before = gyms_table(settings.database_url)
    indexes = index_definitions(settings.database_url)
    with psycopg.connect(settings.database_url) as conn:
        outbox_before = conn.execute("SELECT count(*) FROM mail_outbox").fetchone()
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "projections", "rebuild"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "rebuilt read model" in result.stdout
    assert "customers_gym_search" in dict(indexes)
    assert index_definitions(settings.database_url) == indexes  # deferred ones are back
    assert (
        gyms_table(settings.database_url) == before == replayed_gyms(ledger, settings.database_url)
    )
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM mail_outbox").fetchone() == outbox_before
    time.sleep(1.0)  # give a wrongly re-queued mail time to arrive
    for address in emails:
        assert len(inbox.to(address)) == 1


def test_a_batch_cut_off_while_writing_leaves_nothing_behind_for_the_next(
    fresh_database: str, settings: Any
) -> None:
    """The cause of the read-your-writes stall after a PostgreSQL restart: a batch whose
    bulk insert failed (there, the server went away mid-COPY) kept its gathered rows in
    memory; the retry wrote them again beside its own, hit a duplicate key, and the
    projector parked at an innocent event until someone resumed it."""
    from projections.read_model import read_model_projector
    from tests.integration.test_tamper_evidence import add_customers

    ledger = GymLedger(fresh_database)
    try:
        add_customers(ledger, [register(ledger).id], 3)
    finally:
        ledger.close()
    projector = read_model_projector(settings.key_ring())
    with psycopg.connect(fresh_database) as worker, psycopg.connect(fresh_database) as holder:
        projector.ensure_position_row(worker)
        with holder.transaction():
            holder.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
            worker.execute("SET lock_timeout = '200ms'")
            worker.commit()
            with contextlib.suppress(psycopg.OperationalError):  # the COPY cannot get in
                projector.run_batch(worker)
        worker.rollback()
        worker.execute("SET lock_timeout = 0")
        worker.commit()
        assert projector.catch_up(worker) == head_position(fresh_database)
        assert worker.execute("SELECT count(*) FROM projection_faults").fetchone() == (0,)
        assert worker.execute("SELECT count(*) FROM customers").fetchone() == (3,)


def round_trips(conn: psycopg.Connection[Any], work: Any) -> int:
    """How many times `work` waited for the server, from libpq's protocol trace: each
    run of Syncs and Flushes the client sent (the end of a pipeline, a plain query or
    COMMIT; a result asked for inside a pipeline) between other messages."""
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        try:
            work()
        finally:
            conn.pgconn.untrace()
        trace.seek(0)
        sent = [fields[3] for line in trace if (fields := line.rstrip().split("\t"))[1] == "F"]
    waits = [m in ("Sync", "Flush") for m in sent]
    return sum(wait and not before for wait, before in zip(waits, [False, *waits], strict=False))


def test_a_live_batch_costs_six_round_trips_and_a_failed_one_leaves_nothing(
    fresh_database: str, settings: Any
) -> None:
    """Live traffic (small batches) runs each batch in one pipeline: BEGIN; the lock and
    the events; the hash chain's end and the gym's head (two); the writes, position and
    NOTIFY; COMMIT with the pipeline's end. Seven before the gym's name for the welcome
    mails was kept between batches. A batch that fails while writing that way leaves
    nothing behind, as a COPYing one does."""
    from projections.read_model import read_model_projector
    from tests.integration.test_tamper_evidence import add_customers

    ledger = GymLedger(fresh_database)
    projector = read_model_projector(settings.key_ring())
    try:
        gym_id = register(ledger).id
        with psycopg.connect(fresh_database) as worker, psycopg.connect(fresh_database) as holder:
            projector.ensure_position_row(worker)
            projector.catch_up(worker)  # a full catch-up, then an empty batch: live from here
            add_customers(ledger, [gym_id], 3)
            assert round_trips(worker, lambda: projector.run_batch(worker)) <= 6

            add_customers(ledger, [gym_id], 2)
            with holder.transaction():
                holder.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
                worker.execute("SET lock_timeout = '200ms'")
                worker.commit()
                with contextlib.suppress(psycopg.OperationalError):
                    projector.run_batch(worker)
            worker.rollback()
            worker.execute("SET lock_timeout = 0")
            worker.commit()
            projector.catch_up(worker)
            assert projector.position == head_position(fresh_database)
            assert worker.execute("SELECT count(*) FROM projection_faults").fetchone() == (0,)
            assert worker.execute("SELECT count(*) FROM customers").fetchone() == (5,)
    finally:
        ledger.close()


def test_a_welcome_mail_names_the_gym_as_another_projector_instance_renamed_it(
    fresh_database: str, settings: Any
) -> None:
    """The mail outbox keeps gym names between batches; when another instance applied
    events meanwhile (here a rename), what it kept is dropped and read again."""
    from commands.customers import NewCustomer, RegisterCustomer, register_customer
    from commands.gyms import UpdateGymProfile
    from domain import gym
    from projections.read_model import read_model_projector

    ledger = GymLedger(fresh_database)
    first, second = (read_model_projector(settings.key_ring()) for _ in range(2))
    try:
        gym_id = register(ledger, name="Old Name").id
        with psycopg.connect(fresh_database) as conn:
            first.ensure_position_row(conn)
            first.catch_up(conn)  # knows the gym as "Old Name"
            changes = gym.ProfileChanges(name="New Name")
            ledger.handle(UpdateGymProfile(gym_id=gym_id, changes=changes), CommandContext.system())
            second.catch_up(conn)
            details = NewCustomer(first_name="Ada", last_name="L", email="ada@example.com")
            register_customer(
                ledger, RegisterCustomer(gym_id=gym_id, details=details), CommandContext.system()
            )
            first.catch_up(conn)
            (body,) = conn.execute(
                "SELECT body FROM mail_outbox WHERE recipient = 'ada@example.com'"
            ).fetchone() or ("",)
        assert "New Name" in body, body
        assert "Old Name" not in body, body
    finally:
        ledger.close()


def test_a_batch_rolled_back_leaves_no_gym_name_from_its_events(
    fresh_database: str, settings: Any
) -> None:
    """A customer who joined before the gym was renamed is welcomed with the old name,
    even when the batch holding both failed once after applying the rename."""
    from commands.customers import NewCustomer, RegisterCustomer, register_customer
    from commands.gyms import UpdateGymProfile
    from domain import gym
    from projections.read_model import read_model_projector

    ledger = GymLedger(fresh_database)
    projector = read_model_projector(settings.key_ring())
    try:
        gym_id = register(ledger, name="Old Name").id
        with psycopg.connect(fresh_database) as worker, psycopg.connect(fresh_database) as holder:
            projector.ensure_position_row(worker)
            projector.catch_up(worker)
            details = NewCustomer(first_name="Ada", last_name="L", email="ada@example.com")
            register_customer(
                ledger, RegisterCustomer(gym_id=gym_id, details=details), CommandContext.system()
            )
            changes = gym.ProfileChanges(name="New Name")
            ledger.handle(UpdateGymProfile(gym_id=gym_id, changes=changes), CommandContext.system())
            with holder.transaction():  # the batch fails writing its mails
                holder.execute("LOCK TABLE mail_outbox IN ACCESS EXCLUSIVE MODE")
                worker.execute("SET lock_timeout = '200ms'")
                worker.commit()
                with contextlib.suppress(psycopg.OperationalError):
                    projector.run_batch(worker)
            worker.rollback()
            projector.catch_up(worker)
            (body,) = worker.execute(
                "SELECT body FROM mail_outbox WHERE recipient = 'ada@example.com'"
            ).fetchone() or ("",)
        assert "Old Name" in body, body
    finally:
        ledger.close()
