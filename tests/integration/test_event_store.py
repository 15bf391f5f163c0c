"""The single-round-trip append (infra/event_store.py) against real PostgreSQL."""

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.application import GymLedger, StreamConflict
from commands.context import CommandContext
from domain import customer
from domain.events import DomainEvent
from infra.event_store import SingleTripRecorder

DETAILS = customer.NewCustomer(first_name="Ada", last_name="Lovelace", email="ada@example.com")


def _new_customer(gym_id: UUID) -> DomainEvent:
    return customer.register(
        uuid4(),
        gym_id,
        DETAILS,
        today=date(2026, 1, 1),
        stamp=CommandContext.system().stamp(),
    )


def _committed(database_url: str) -> list[tuple[UUID, int]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version FROM gymledger_events"
            " ORDER BY notification_id"
        )
        return [(r[0], r[1]) for r in rows]


def test_appends_return_their_positions_in_order(fresh_database: str) -> None:
    ledger = GymLedger(fresh_database)
    try:
        gym_id = uuid4()
        first = ledger.append(_new_customer(gym_id))
        second = ledger.append(_new_customer(gym_id), _new_customer(gym_id))
        assert second == first + 2  # the highest of the two positions written
    finally:
        ledger.close()


def test_a_conflicting_append_writes_nothing(fresh_database: str) -> None:
    ledger = GymLedger(fresh_database)
    try:
        taken = _new_customer(uuid4())
        ledger.append(taken)
        with pytest.raises(StreamConflict):
            ledger.append(_new_customer(uuid4()), taken)  # the second one collides
        assert _committed(fresh_database) == [(taken.originator_id, 1)]
    finally:
        ledger.close()


def _widen_the_commit_window(database_url: str) -> None:
    """Make each append linger between taking its positions and committing, so that
    out-of-order commits, if the append allowed them, would happen on every run."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION linger() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN IF random() < 0.1 THEN PERFORM pg_sleep(0.03); END IF; RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE TRIGGER linger AFTER INSERT ON gymledger_events"
            " FOR EACH STATEMENT EXECUTE FUNCTION linger()"
        )


def test_a_tailing_reader_sees_every_append_once_in_order(fresh_database: str) -> None:
    """A reader that follows the log by position, as the projector does, must never
    pass a position whose transaction commits a moment later: it would skip that
    event for good. Without the table lock inside the append function this fails."""
    _widen_the_commit_window(fresh_database)
    writers, appends_each = 16, 100
    ledger = GymLedger(fresh_database, pool_size=writers)
    seen: list[tuple[UUID, int]] = []
    done = threading.Event()

    def follow() -> None:
        position = 0
        with psycopg.connect(fresh_database, autocommit=True) as conn:
            while True:
                finished = done.is_set()  # read once more after the writers stop
                rows = conn.execute(
                    "SELECT notification_id, originator_id, originator_version"
                    " FROM gymledger_events WHERE notification_id > %s"
                    " ORDER BY notification_id LIMIT 3",
                    (position,),
                ).fetchall()
                seen.extend((r[1], r[2]) for r in rows)
                position = rows[-1][0] if rows else position
                if finished and not rows:
                    return

    def write(worker: int) -> None:
        gym_id = uuid4()
        for i in range(appends_each):
            ledger.append(*(_new_customer(gym_id) for _ in range(1 + (worker + i) % 3)))

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(write, range(writers)))
    finally:
        done.set()
        follower.join()
        ledger.close()
    committed = _committed(fresh_database)
    assert len(committed) == sum(
        1 + (w + i) % 3 for w in range(writers) for i in range(appends_each)
    )
    assert seen == committed


def _recorder_statements(ledger: GymLedger) -> int:
    recorder = ledger.recorder
    assert isinstance(recorder, SingleTripRecorder)
    return recorder.group_commit.statements


def test_concurrent_appends_share_a_statement_and_a_duplicate_fails_alone(
    fresh_database: str,
) -> None:
    """While one append waits for the table lock, the others queue and are then written
    by one statement; a duplicate among them fails only its own append."""
    writers = 8
    ledger = GymLedger(fresh_database, pool_size=2)
    taken = _new_customer(uuid4())
    ledger.append(taken)
    before = _recorder_statements(ledger)
    results: dict[int, object] = {}

    def write(i: int) -> None:
        event = taken if i == 3 else _new_customer(uuid4())  # writer 3 repeats a version
        try:
            results[i] = ledger.append(event)
        except StreamConflict as conflict:
            results[i] = conflict

    try:
        with psycopg.connect(fresh_database) as blocker:
            blocker.execute("LOCK TABLE gymledger_events IN EXCLUSIVE MODE")
            first = threading.Thread(target=write, args=(0,))
            first.start()  # takes the lead and waits for the lock
            _wait_until(lambda: _waiting_for_lock(fresh_database))
            others = [threading.Thread(target=write, args=(i,)) for i in range(1, writers)]
            for thread in others:
                thread.start()
            _wait_until(lambda: len(ledger_queue(ledger)) == writers - 1)
        # The lock is released: the first append lands, then the seven queued ones
        # in one statement, which the duplicate fails, so they are written one by one.
        for thread in [first, *others]:
            thread.join(timeout=10)
    finally:
        ledger.close()
    assert isinstance(results.pop(3), StreamConflict)
    assert all(isinstance(position, int) for position in results.values())
    assert len(_committed(fresh_database)) == 1 + writers - 1
    # 1 for the first, 1 for the group of seven, 7 for it written one by one.
    assert _recorder_statements(ledger) - before == 1 + 1 + (writers - 1)


def test_concurrent_appends_without_conflict_take_two_statements(fresh_database: str) -> None:
    writers = 8
    ledger = GymLedger(fresh_database, pool_size=2)
    ledger.append(_new_customer(uuid4()))
    before = _recorder_statements(ledger)
    try:
        with psycopg.connect(fresh_database) as blocker:
            blocker.execute("LOCK TABLE gymledger_events IN EXCLUSIVE MODE")
            threads = [
                threading.Thread(target=ledger.append, args=(_new_customer(uuid4()),))
                for _ in range(writers)
            ]
            threads[0].start()
            _wait_until(lambda: _waiting_for_lock(fresh_database))
            for thread in threads[1:]:
                thread.start()
            _wait_until(lambda: len(ledger_queue(ledger)) == writers - 1)
        for thread in threads:
            thread.join(timeout=10)
    finally:
        ledger.close()
    assert len(_committed(fresh_database)) == 1 + writers
    assert _recorder_statements(ledger) - before == 2  # the first, then the seven together


def ledger_queue(ledger: GymLedger) -> list[object]:
    recorder = ledger.recorder
    assert isinstance(recorder, SingleTripRecorder)
    return list(recorder.group_commit._queue)


def _waiting_for_lock(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks"
            " WHERE NOT granted AND relation = 'gymledger_events'::regclass"
        ).fetchone()
    return bool(row and row[0])


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def scratch_ledger(fresh_database: str) -> Iterator[tuple[GymLedger, str]]:
    ledger = GymLedger(fresh_database)
    yield ledger, fresh_database
    ledger.close()


TOPICS = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=st.lists(st.tuples(TOPICS, st.binary(max_size=300)), min_size=1, max_size=5))
def test_stored_events_read_back_byte_for_byte(
    scratch_ledger: tuple[GymLedger, str], events: list[tuple[str, bytes]]
) -> None:
    """The append's JSON document carries any topic and any state (base64) exactly, and
    returns each event's own position. (A database of its own: no projector may meet
    these made-up topics.)"""
    ledger, url = scratch_ledger
    stored = [StoredEvent(uuid4(), 1, topic, state) for topic, state in events]
    positions = ledger.recorder.insert_events(stored)
    assert positions is not None
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM gymledger_events WHERE notification_id = ANY(%s) ORDER BY notification_id",
            (list(positions),),
        ).fetchall()
    assert [r[0] for r in rows] == list(positions)
    read = [(r[1], r[2], r[3], bytes(r[4])) for r in rows]
    assert read == [(e.originator_id, 1, e.topic, e.state) for e in stored]
