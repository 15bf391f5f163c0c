"""Tamper evidence: a hash chain per gym over the event log, with signed checkpoints.

Each event the projector reads is linked to the previous event of the same gym:
    content = sha256(stream id | version | topic | sha256(stored state))
    link    = sha256(previous link | position | content)
After every batch, the head of each gym's chain touched is signed with an HMAC key
kept outside the database. Someone able to edit rows can recompute links but not
signatures, so `verify()` finds the first altered, deleted, inserted or reordered
event. Per gym rather than global: a gym's export verifies on its own, an owner
can verify their own history, and gyms' chains never contend.

The chain is never rebuilt (that would launder tampering); events recorded after
the projector's last batch are not yet covered.
"""

import hashlib
import hmac
import struct
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow

from domain import gym_of
from infra.event_codec import EventCodec
from projections.engine import BulkInsert, Projection, Recorded

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS event_chain (
    position bigint PRIMARY KEY,
    gym_id uuid NOT NULL,
    content bytea NOT NULL,
    link bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS event_chain_gym ON event_chain (gym_id, position);
CREATE TABLE IF NOT EXISTS chain_heads (
    gym_id uuid PRIMARY KEY,
    position bigint NOT NULL,
    link bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_checkpoints (
    gym_id uuid NOT NULL,
    position bigint NOT NULL,
    link bytea NOT NULL,
    mac bytea NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gym_id, position)
);
"""

GENESIS = bytes(32)


def content_digest(stream_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    return content_from_state_digest(stream_id, version, topic, hashlib.sha256(state).digest())


def content_from_state_digest(
    stream_id: UUID, version: int, topic: str, state_sha256: bytes
) -> bytes:
    """The same digest from the state's sha256 alone (what an export carries)."""
    topic_bytes = topic.encode()
    return hashlib.sha256(
        stream_id.bytes + struct.pack(">qI", version, len(topic_bytes)) + topic_bytes + state_sha256
    ).digest()


def link_hash(previous: bytes, position: int, content: bytes) -> bytes:
    return hashlib.sha256(previous + struct.pack(">q", position) + content).digest()


def sign(key: bytes, gym_id: UUID, position: int, link: bytes) -> bytes:
    return hmac.new(key, gym_id.bytes + struct.pack(">q", position) + link, "sha256").digest()


class AuditChainProjection(Projection):
    tables: tuple[str, ...] = ("event_chain", "chain_heads", "chain_checkpoints")
    rebuildable = False

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._heads: dict[UUID, tuple[int, bytes]] = {}  # this batch's view of each head
        self._touched: set[UUID] = set()
        self._links = BulkInsert(
            "event_chain",
            {"position": "bigint", "gym_id": "uuid", "content": "bytea", "link": "bytea"},
        )

    def begin_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        self._heads.clear()
        self._touched.clear()
        self._links.rows.clear()

    def _head(self, cur: psycopg.Cursor[TupleRow], gym_id: UUID) -> tuple[int, bytes]:
        if gym_id not in self._heads:
            row = cur.execute(
                "SELECT position, link FROM chain_heads WHERE gym_id = %s FOR UPDATE", (gym_id,)
            ).fetchone()
            self._heads[gym_id] = (0, GENESIS) if row is None else (row[0], bytes(row[1]))
        return self._heads[gym_id]

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        gym_id = gym_of(recorded.event)
        head_position, previous = self._head(cur, gym_id)
        if head_position >= recorded.position:
            return  # already chained (a rebuild replays the log; the chain stays as it is)
        content = content_digest(
            recorded.stream_id, recorded.version, recorded.topic, recorded.state
        )
        link = link_hash(previous, recorded.position, content)
        self._links.add(recorded.position, gym_id, content, link)
        self._heads[gym_id] = (recorded.position, link)
        self._touched.add(gym_id)

    def end_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        """Write the links, then move and sign the head of every chain extended."""
        self._links.flush(cur)
        with cur.connection.pipeline():  # two statements per gym, in one round trip
            for gym_id in sorted(self._touched):
                position, link = self._heads[gym_id]
                cur.execute(
                    "INSERT INTO chain_heads (gym_id, position, link) VALUES (%s, %s, %s)"
                    " ON CONFLICT (gym_id) DO UPDATE"
                    " SET position = excluded.position, link = excluded.link",
                    (gym_id, position, link),
                )
                cur.execute(
                    "INSERT INTO chain_checkpoints (gym_id, position, link, mac)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (gym_id, position, link, sign(self.key, gym_id, position, link)),
                )
        self._touched.clear()


@dataclass
class Problem:
    kind: str  # altered | deleted | inserted | reordered | chain_broken | bad_checkpoint
    position: int
    detail: str


@dataclass
class Report:
    gym_id: UUID | None
    checked: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        problems = sorted(self.problems, key=lambda p: p.position)
        return {
            "ok": self.ok,
            "gym_id": str(self.gym_id) if self.gym_id else None,
            "events_checked": self.checked,
            "checkpoints_checked": self.checkpoints,
            "first_problem": vars(problems[0]) if problems else None,
            "problems": [vars(p) for p in problems],
        }


def verify(
    conn: psycopg.Connection[Any], key: bytes, codec: EventCodec, gym_id: UUID | None = None
) -> Report:
    """Recompute the chain(s) from the stored events; None checks every gym."""
    report = Report(gym_id)
    gyms = [gym_id] if gym_id else [r[0] for r in conn.execute("SELECT gym_id FROM chain_heads")]
    for gym in gyms:
        _verify_gym(conn, key, gym, report)
    _find_inserted(conn, codec, gym_id, report)
    return report


def _verify_gym(conn: psycopg.Connection[Any], key: bytes, gym_id: UUID, report: Report) -> None:
    rows = conn.execute(
        "SELECT c.position, c.content, c.link, e.originator_id, e.originator_version, e.topic,"
        " e.state FROM event_chain c LEFT JOIN gymledger_events e"
        " ON e.notification_id = c.position WHERE c.gym_id = %s ORDER BY c.position",
        (gym_id,),
    ).fetchall()
    recorded_at = {bytes(r[1]): r[0] for r in rows}  # content -> position where chained
    links: dict[int, bytes] = {}
    previous = GENESIS
    for position, content, link, stream_id, version, topic, state in rows:
        report.checked += 1
        content, link = bytes(content), bytes(link)
        if link_hash(previous, position, content) != link:
            report.problems.append(Problem("chain_broken", position, "link does not match"))
        links[position] = link
        previous = link
        if stream_id is None:
            report.problems.append(Problem("deleted", position, "event missing from the log"))
            continue
        actual = content_digest(stream_id, version, topic, bytes(state))
        if actual == content:
            continue
        moved_from = recorded_at.get(actual)
        if moved_from is not None:
            report.problems.append(
                Problem("reordered", position, f"holds the event chained at {moved_from}")
            )
        else:
            report.problems.append(Problem("altered", position, "content differs from chain"))
    for position, link, mac in conn.execute(
        "SELECT position, link, mac FROM chain_checkpoints WHERE gym_id = %s ORDER BY position",
        (gym_id,),
    ):
        report.checkpoints += 1
        if not hmac.compare_digest(sign(key, gym_id, position, bytes(link)), bytes(mac)):
            report.problems.append(Problem("bad_checkpoint", position, "signature invalid"))
        elif links.get(position) != bytes(link):
            report.problems.append(
                Problem("chain_broken", position, "chain differs from signed checkpoint")
            )


def _find_inserted(
    conn: psycopg.Connection[Any], codec: EventCodec, gym_id: UUID | None, report: Report
) -> None:
    """Events inside the chained range that the chain never saw."""
    for position, topic, state in conn.execute(
        "SELECT e.notification_id, e.topic, e.state FROM gymledger_events e"
        " WHERE e.notification_id <= (SELECT coalesce(max(position), 0) FROM event_chain)"
        " AND NOT EXISTS (SELECT 1 FROM event_chain c WHERE c.position = e.notification_id)"
    ):
        try:
            owner: UUID | None = gym_of(codec.decode(topic, bytes(state)))
        except Exception:  # an undecodable row is suspicious whoever it claims to be
            owner = None
        if gym_id is None or owner in (gym_id, None):
            report.problems.append(Problem("inserted", position, "event not in the chain"))
