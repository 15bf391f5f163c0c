"""The single-round-trip append (infra/event_store.py) against real PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from uuid import UUID, uuid4

import psycopg
import pytest

from commands.application import GymLedger, StreamConflict
from commands.context import CommandContext
from domain import customer
from domain.events import DomainEvent

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
