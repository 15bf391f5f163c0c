"""Verification of the audit chain: recompute each gym's chain from the stored events.

What is checked, and what each finding means (`Problem.kind`):
- altered / reordered / deleted: an event's stored bytes no longer match its chain row;
- chain_broken: a link does not follow from the previous one, or differs from a signed
  checkpoint (links were recomputed);
- bad_checkpoint / missing_checkpoint: a signature does not verify with any known public
  key, or a checkpoint that a later one names was deleted;
- unsigned_tail: the chain goes on past its last valid checkpoint (the projector signs
  every head it moves, in the same transaction, so this is never legitimate);
- head_mismatch: `chain_heads` disagrees with the chain;
- inserted: an event of the gym in the chained range that the chain does not hold
  (inserted, or its chain rows removed while the event remains);
- not_extended: a checkpoint kept earlier (by an auditor, or the witness) whose position
  the log no longer holds with the same link (truncation, rollback, rewrite).
The gyms to check come from the event log itself, never only from chain tables.
Events recorded after the projector's last batch are counted as pending, not problems.
"""

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow

from infra.db import EVENTS_TABLE
from infra.signing import KeyRing
from projections.audit_chain import GENESIS
from projections.checkpoints import Checkpoint, signed_checkpoints
from projections.read_model import READ_MODEL

MAX_PROBLEMS_SHOWN = 100


@dataclass
class Problem:
    kind: str
    position: int
    detail: str


@dataclass
class Report:
    gym_id: UUID | None
    checked: int = 0
    checkpoints: int = 0
    signed_through: int | None = 0  # last position a valid signature covers (one gym)
    unsigned: int = 0  # chained events after it
    pending: int = 0  # recorded after the projector's last batch: not chained yet
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, position: int, detail: str) -> None:
        self.problems.append(Problem(kind, position, detail))

    def as_dict(self) -> dict[str, Any]:
        problems = sorted(self.problems, key=lambda p: p.position)
        return {
            "ok": self.ok,
            "gym_id": str(self.gym_id) if self.gym_id else None,
            "events_checked": self.checked,
            "checkpoints_checked": self.checkpoints,
            "signed_through": self.signed_through,
            "unsigned_events": self.unsigned,
            "pending_events": self.pending,
            "first_problem": vars(problems[0]) if problems else None,
            "problems_total": len(problems),
            "problems": [vars(p) for p in problems[:MAX_PROBLEMS_SHOWN]],
        }


class GymChain:
    """One gym's findings, judged from what the queries below return (no I/O here)."""

    def __init__(self, gym_id: UUID, ring: KeyRing, report: Report) -> None:
        self.gym_id, self.ring, self.report = gym_id, ring, report

    def findings(self, rows: Iterable[TupleRow]) -> None:
        """Rows of (position, deleted, broken, mismatched, position of the same content)."""
        for position, deleted, broken, mismatched, moved_from in rows:
            if broken:
                self.report.add("chain_broken", position, "link does not follow from the previous")
            if deleted:
                self.report.add("deleted", position, "event missing from the log")
            elif mismatched and moved_from is not None:
                self.report.add("reordered", position, f"holds the event chained at {moved_from}")
            elif mismatched:
                self.report.add("altered", position, "content differs from chain")

    def checkpoints(self, checkpoints: Iterable[tuple[Checkpoint, bytes | None]]) -> int:
        """Check signatures, their order and that the chain still holds each signed link;
        returns the last position they cover."""
        expected_previous, signed_through = 0, 0
        for checkpoint, chained_link in checkpoints:
            self.report.checkpoints += 1
            position = checkpoint.position
            if checkpoint.gym_id != self.gym_id or not checkpoint.valid(self.ring):
                self.report.add("bad_checkpoint", position, "signature invalid or key unknown")
                continue
            if checkpoint.previous_position != expected_previous:
                self.report.add(
                    "missing_checkpoint",
                    position,
                    f"names the checkpoint at {checkpoint.previous_position} before it,"
                    f" found {expected_previous}",
                )
            expected_previous = position
            if chained_link != bytes.fromhex(checkpoint.link):
                self.report.add("chain_broken", position, "chain differs from signed checkpoint")
            else:
                signed_through = position
        return signed_through

    def finish(
        self,
        signed_through: int,
        unsigned: int,
        last: tuple[int, bytes] | None,
        head_row: tuple[int, bytes] | None,
    ) -> None:
        self.report.signed_through = signed_through
        self.report.unsigned += unsigned
        if unsigned and last is not None:
            self.report.add(
                "unsigned_tail",
                last[0],
                f"{unsigned} chained events after the last valid checkpoint ({signed_through})",
            )
        if head_row != last:
            position = last[0] if last else head_row[0] if head_row else 0
            self.report.add("head_mismatch", position, "chain_heads disagrees with the chain")


# The per-row work runs in PostgreSQL (sha256 of every stored state, each link against
# the stored link before it): only findings travel, and an API process never spends
# its interpreter lock on hashing. The formulas are those of audit_chain.py.
_CHAIN_FINDINGS = f"""
WITH chain AS (
    SELECT c.position, c.content, c.link,
        lag(c.link, 1, %(genesis)s::bytea) OVER (ORDER BY c.position) AS previous,
        e.notification_id IS NULL AS deleted,
        sha256(uuid_send(e.originator_id) || int8send(e.originator_version::bigint)
            || int4send(octet_length(e.topic)) || convert_to(e.topic, 'UTF8')
            || sha256(e.state)) AS actual
    FROM event_chain c LEFT JOIN {EVENTS_TABLE} e ON e.notification_id = c.position
    WHERE c.gym_id = %(gym)s
), flagged AS (
    SELECT position, deleted, actual,
        link <> sha256(previous || int8send(position) || content) AS broken,
        NOT deleted AND actual <> content AS mismatched
    FROM chain
)
SELECT f.position, f.deleted, f.broken, f.mismatched, moved.position
FROM flagged f LEFT JOIN (
    SELECT content, min(position) AS position FROM event_chain
    WHERE gym_id = %(gym)s GROUP BY content
) moved ON f.mismatched AND moved.content = f.actual
WHERE f.deleted OR f.broken OR f.mismatched
ORDER BY f.position
"""  # noqa: S608 - constants only
_COUNT_AFTER = (
    "SELECT count(*) FILTER (WHERE position > %s), count(*) FROM event_chain WHERE gym_id = %s"
)
_LAST = "SELECT position, link FROM event_chain WHERE gym_id = %s ORDER BY position DESC LIMIT 1"
_HEAD = "SELECT position, link FROM chain_heads WHERE gym_id = %s"
# The read model's position inline rather than engine.projection_position(): the
# chain and the position are written in one batch, and one statement reads both from
# one snapshot.
_CHAINED_THROUGH = (
    "SELECT greatest((SELECT coalesce(max(position), 0) FROM event_chain),"
    " (SELECT coalesce(max(position), 0) FROM projector_positions WHERE name = %s))"
)
# Every stream the gym is known to write to, through the log and the per-gym index,
# then each of their events that no chain holds (index lookups only, never a full scan).
_UNCHAINED_OF_GYM = f"""
WITH streams AS (
    SELECT %(gym)s::uuid AS id
    UNION SELECT e.originator_id FROM event_chain c
        JOIN {EVENTS_TABLE} e ON e.notification_id = c.position WHERE c.gym_id = %(gym)s
    UNION SELECT stream_id FROM event_index WHERE gym_id = %(gym)s
)
SELECT e.notification_id FROM streams s JOIN {EVENTS_TABLE} e ON e.originator_id = s.id
WHERE NOT EXISTS (SELECT 1 FROM event_chain c WHERE c.position = e.notification_id)
"""  # noqa: S608 - constants only
_UNCHAINED_ANY = (
    f"SELECT notification_id FROM {EVENTS_TABLE} e"  # noqa: S608
    " WHERE NOT EXISTS (SELECT 1 FROM event_chain c WHERE c.position = e.notification_id)"
)
_GYMS = (
    f"SELECT originator_id FROM {EVENTS_TABLE} WHERE topic LIKE 'GymRegistered.%%'"  # noqa: S608
    " UNION SELECT gym_id FROM event_chain UNION SELECT gym_id FROM chain_heads"
)

Conn = psycopg.Connection[TupleRow]


def _pair(row: TupleRow | None) -> tuple[int, bytes] | None:
    return None if row is None else (int(row[0]), bytes(row[1]))


def _link_at(conn: Conn, gym_id: UUID, position: int) -> bytes | None:
    row = conn.execute(
        "SELECT link FROM event_chain WHERE gym_id = %s AND position = %s", (gym_id, position)
    ).fetchone()
    return None if row is None else bytes(row[0])


def _chain(conn: Conn, ring: KeyRing, gym_id: UUID, report: Report) -> None:
    chain = GymChain(gym_id, ring, report)
    chain.findings(conn.execute(_CHAIN_FINDINGS, {"gym": gym_id, "genesis": GENESIS}).fetchall())
    signed_through = chain.checkpoints(signed_checkpoints(conn, gym_id))
    counted = conn.execute(_COUNT_AFTER, (signed_through, gym_id)).fetchone()
    unsigned, total = (int(counted[0]), int(counted[1])) if counted else (0, 0)
    report.checked += total
    last = _pair(conn.execute(_LAST, (gym_id,)).fetchone())
    chain.finish(signed_through, unsigned, last, _pair(conn.execute(_HEAD, (gym_id,)).fetchone()))


def _chained_through(conn: Conn) -> int:
    row = conn.execute(_CHAINED_THROUGH, (READ_MODEL,)).fetchone()
    return int(row[0]) if row else 0


def _unchained(report: Report, positions: Iterable[int], chained_through: int) -> None:
    for position in sorted(set(positions)):
        if position <= chained_through:
            report.add("inserted", position, "in the chained range but not in the chain")
        else:
            report.pending += 1


@contextlib.contextmanager
def _snapshot(conn: Conn) -> Iterator[None]:
    """Every statement of one verification sees the same committed state: a projector
    batch committing between two of them would otherwise read as tampering."""
    saved = conn.isolation_level, conn.read_only
    conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
    try:
        with conn.transaction():
            yield
    finally:
        conn.isolation_level, conn.read_only = saved


def _gym(conn: Conn, ring: KeyRing, gym_id: UUID) -> Report:
    report = Report(gym_id)
    _chain(conn, ring, gym_id, report)
    unchained = [r[0] for r in conn.execute(_UNCHAINED_OF_GYM, {"gym": gym_id})]
    _unchained(report, unchained, _chained_through(conn))
    return report


def verify_gym(conn: Conn, ring: KeyRing, gym_id: UUID) -> Report:
    """One gym's chain, reading only that gym's rows."""
    with _snapshot(conn):
        return _gym(conn, ring, gym_id)


def verify_checkpoint(conn: Conn, ring: KeyRing, kept: Checkpoint) -> Report:
    """The gym's chain, and whether it still extends a checkpoint kept earlier."""
    with _snapshot(conn):
        report = _gym(conn, ring, kept.gym_id)
        extended = _link_at(conn, kept.gym_id, kept.position) == bytes.fromhex(kept.link)
    if not kept.valid(ring):
        report.add("bad_checkpoint", kept.position, "the kept checkpoint's signature is invalid")
    elif not extended:
        report.add("not_extended", kept.position, "the log no longer holds this checkpoint")
    return report


def verify_all(conn: Conn, ring: KeyRing) -> Report:
    """Every gym the log or the chain knows of, and every event of the log."""
    report = Report(None)
    with _snapshot(conn):
        for (gym_id,) in conn.execute(_GYMS).fetchall():
            _chain(conn, ring, gym_id, report)
        unchained = [r[0] for r in conn.execute(_UNCHAINED_ANY)]
        _unchained(report, unchained, _chained_through(conn))
    report.signed_through = None  # one position per gym: no single figure for all of them
    return report


def verify_witnessed(conn: Conn, ring: KeyRing, witnessed: Iterable[Checkpoint]) -> Report:
    """Checkpoints the witness kept outside the database must all still be extended."""
    report = Report(None)
    with _snapshot(conn):
        for kept in witnessed:
            report.checkpoints += 1
            if not kept.valid(ring):
                report.add("bad_checkpoint", kept.position, f"witness line of gym {kept.gym_id}")
                continue
            if _link_at(conn, kept.gym_id, kept.position) != bytes.fromhex(kept.link):
                report.add("not_extended", kept.position, f"gym {kept.gym_id}: witnessed, now gone")
    report.signed_through = None
    return report
