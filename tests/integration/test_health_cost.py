"""/health, /health/ready and /metrics cost the same on a large database as on an
empty one: what they read comes from index lookups and bounded tables, never from a
scan of a table that grows with the business (shown with EXPLAIN on a filled log)."""

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from domain import gym
from domain.events import EventMetadata, Stamp
from domain.gym import GymRegistered
from infra.event_codec import CODEC
from projections import mail_outbox
from projections.engine import Recorded
from projections.mail_outbox import MailOutboxProjection
from projections.monitoring import STATUS_SQL
from projections.read_model import READ_MODEL

# Tables whose size is bounded by configuration, not by traffic: a scan of one costs
# a page or two however long the service runs.
BOUNDED = {"projector_positions", "projection_faults", "mail_outbox_counts"}
EVENTS, MAILS = 50_000, 50_000


def _fill(conn: psycopg.Connection[Any]) -> None:
    """A log and an outbox the size of a busy gym chain's, straight in SQL."""
    conn.execute(
        "INSERT INTO gymledger_events (originator_id, originator_version, topic, state)"
        " SELECT gen_random_uuid(), 1, 'Filler.v1', '\\x7b7d'::bytea"
        " FROM generate_series(1, %s)",
        (EVENTS,),
    )
    conn.execute(
        "INSERT INTO mail_outbox (dedupe_key, gym_id, recipient, subject, body,"
        " correlation_id, status, enqueued_at)"
        " SELECT 'fill:' || n, gen_random_uuid(), 'a@b.example', 's', 'b', 'c',"
        " CASE WHEN n %% 100 = 0 THEN 'pending' WHEN n %% 250 = 1 THEN 'failed' ELSE 'sent' END,"
        " CASE WHEN n %% 200 = 0 THEN now() END"
        " FROM generate_series(1, %s) AS n",
        (MAILS,),
    )
    conn.execute("ANALYZE")


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation) of every scan in a plan tree."""
    found = []
    if "Relation Name" in plan:
        found.append((str(plan["Node Type"]), str(plan["Relation Name"])))
    for child in plan.get("Plans", []):
        found.extend(_scans(child))
    return found


def test_health_queries_never_scan_a_growing_table(fresh_database: str) -> None:
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        _fill(conn)
        cur = conn.execute(
            f"EXPLAIN (FORMAT JSON) {STATUS_SQL}",
            {"name": READ_MODEL},
        )
        row = cur.fetchone()
        assert row is not None
        plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
        scans = _scans(plan[0]["Plan"])
        status = conn.execute(STATUS_SQL, {"name": READ_MODEL}).fetchone()
    growing = [(node, table) for node, table in scans if table not in BOUNDED]
    assert growing, scans  # the log's head is read, through its primary key
    seq_scans = [(node, table) for node, table in growing if node != "Index Only Scan"]
    assert seq_scans == [], f"scans of growing tables: {scans}"
    assert status is not None
    assert status[2:4] == (MAILS // 100, len(range(1, MAILS + 1, 250)))


def _counted(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute("SELECT status, sum(n) FROM mail_outbox_counts GROUP BY status")
    return {str(status): int(n) for status, n in rows if n}


def _actual(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) FROM mail_outbox GROUP BY status")
    return {str(status): int(n) for status, n in rows}


def _welcome_mails(conn: psycopg.Connection[Any], gyms: list[GymRegistered]) -> None:
    """The projector's own code path: one batch of GymRegistered events."""
    outbox = MailOutboxProjection()
    with conn.transaction(), conn.cursor() as cur:
        outbox.begin_batch(cur)
        for position, event in enumerate(gyms, start=1):
            topic, state = CODEC.encode(event)
            outbox.apply(cur, Recorded(position, event.originator_id, 1, topic, state, event))
        outbox.end_batch(cur)


def _gyms(count: int) -> list[GymRegistered]:
    stamp = Stamp(at=datetime.now(UTC), metadata=EventMetadata(actor="t", correlation_id="c"))
    return [
        gym.register(
            uuid.uuid4(),
            gym.NewGym(
                name="Counted",
                email=f"owner-{uuid.uuid4().hex[:8]}@example.com",
                password="counted gym pass phrase",
                address=None,
                description=None,
                gym_type=None,
                monthly_fee_cents=0,
                currency="EUR",
            ),
            hash_password=lambda p: "not-a-real-hash",
            stamp=stamp,
        )
        for _ in range(count)
    ]


def test_mail_counts_follow_every_writer(fresh_database: str) -> None:
    with psycopg.connect(fresh_database, autocommit=True) as conn:

        def agree() -> dict[str, int]:
            assert _counted(conn) == _actual(conn)
            return _counted(conn)

        gyms = _gyms(30)
        _welcome_mails(conn, gyms)
        _welcome_mails(conn, gyms[:10])  # a replay: ON CONFLICT DO NOTHING, nothing counted
        assert agree() == {"pending": 30}
        with conn.transaction():
            taken = [mail_id for mail_id, _ in mail_outbox.take_unenqueued(conn)]
            mail_outbox.unmark_enqueued(conn, taken[:5])
        with conn.transaction():
            mail_outbox.mark_all_sent(conn, [taken[0]])
            mail_outbox.record_failures(
                conn, [(taken[1], "will retry", False), (taken[2], "gave up", True)]
            )
        assert agree() == {"pending": 28, "sent": 1, "failed": 1}
        with conn.transaction():  # rolled back: the counts roll back with the rows
            mail_outbox.mark_all_sent(conn, [taken[3]])
            conn.execute("DELETE FROM mail_outbox WHERE id = %s", (taken[4],))
            raise psycopg.Rollback()
        assert agree() == {"pending": 28, "sent": 1, "failed": 1}
        conn.execute("DELETE FROM mail_outbox WHERE id = ANY(%s)", (taken[:3],))
        assert agree() == {"pending": 27}
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY mail_outbox (dedupe_key, gym_id, recipient, subject, body, correlation_id,"
                " status) FROM STDIN"
            ) as copy,
        ):  # what a restore does
            for n, status in enumerate(["sent", "sent", "failed"]):
                copy.write_row(
                    (f"restored:{n}", uuid.uuid4(), "a@b.example", "s", "b", "c", status)
                )
        assert agree() == {"pending": 27, "sent": 2, "failed": 1}
        conn.execute("UPDATE mail_outbox SET status = 'sent'")  # many rows in one statement
        assert agree() == {"sent": 30}
        conn.execute("TRUNCATE mail_outbox")
        assert agree() == {}


def test_mail_counts_stay_right_under_concurrent_workers(fresh_database: str) -> None:
    """Workers sending at once while the projector adds mail: no lost update, no deadlock."""
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        _welcome_mails(conn, _gyms(200))
        ids = [int(r[0]) for r in conn.execute("SELECT id FROM mail_outbox ORDER BY id")]

    def worker(share: list[int]) -> None:
        with psycopg.connect(fresh_database, autocommit=True) as own:
            for mail_id in share:
                with own.transaction():  # what workers/mail.py deliver() does around SMTP
                    if mail_outbox.claim_batch(own, [mail_id]):
                        if mail_id % 7 == 0:
                            mail_outbox.record_failures(own, [(mail_id, "refused", True)])
                        else:
                            mail_outbox.mark_all_sent(own, [mail_id])

    def projector() -> None:
        with psycopg.connect(fresh_database, autocommit=True) as own:
            for _ in range(10):
                _welcome_mails(own, _gyms(10))

    threads = [threading.Thread(target=worker, args=(ids[i::4],)) for i in range(4)]
    threads.append(threading.Thread(target=projector))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with psycopg.connect(fresh_database) as conn:
        failed = len([i for i in ids if i % 7 == 0])
        assert _actual(conn) == {"pending": 100, "sent": 200 - failed, "failed": failed}
        assert _counted(conn) == _actual(conn)
