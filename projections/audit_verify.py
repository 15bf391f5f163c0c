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

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow

from infra.db import EVENTS_TABLE
from infra.signing import KeyRing
from projections.audit_chain import GENESIS, content_digest, link_hash
from projections.checkpoints import CHECKPOINT_COLUMNS, Checkpoint, checkpoint_of
from projections.read_model import READ_MODEL

PAGE = 5000
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
    signed_through: int = 0  # the last position covered by a valid signature (one gym)
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
    """One gym's chain, fed in position order; pure, so it is tested without a server."""

    def __init__(self, gym_id: UUID, ring: KeyRing, report: Report) -> None:
        self.gym_id, self.ring, self.report = gym_id, ring, report
        self.links: dict[int, bytes] = {}
        self.head = (0, GENESIS)
        self._contents: dict[bytes, int] = {}  # content -> position where chained
        self._mismatches: list[tuple[int, bytes]] = []

    def row(
        self,
        position: int,
        content: bytes,
        link: bytes,
        stored: tuple[UUID, int, str, bytes] | None,
    ) -> None:
        self.report.checked += 1
        if link_hash(self.head[1], position, content) != link:
            self.report.add("chain_broken", position, "link does not follow from the previous")
        self.links[position] = link
        self._contents[content] = position
        self.head = (position, link)
        if stored is None:
            self.report.add("deleted", position, "event missing from the log")
        elif (actual := content_digest(*stored)) != content:
            self._mismatches.append((position, actual))

    def checkpoints(self, checkpoints: Iterable[Checkpoint]) -> int:
        """Check signatures and their order; returns the last position they cover."""
        expected_previous, signed_through = 0, 0
        for checkpoint in checkpoints:
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
            if self.links.get(position) != bytes.fromhex(checkpoint.link):
                self.report.add("chain_broken", position, "chain differs from signed checkpoint")
            else:
                signed_through = position
        return signed_through

    def finish(self, signed_through: int, head_row: tuple[int, bytes] | None) -> None:
        for position, actual in self._mismatches:
            moved_from = self._contents.get(actual)
            if moved_from is not None:
                self.report.add("reordered", position, f"holds the event chained at {moved_from}")
            else:
                self.report.add("altered", position, "content differs from chain")
        head_position = self.head[0]
        unsigned = sum(1 for p in self.links if p > signed_through)
        self.report.signed_through = signed_through
        self.report.unsigned += unsigned
        if unsigned:
            self.report.add(
                "unsigned_tail",
                head_position,
                f"{unsigned} chained events after the last valid checkpoint ({signed_through})",
            )
        chained = self.head if self.links else None
        if head_row != chained:
            self.report.add("head_mismatch", head_position, "chain_heads disagrees with the chain")

    def extends(self, kept: Checkpoint) -> bool:
        return self.links.get(kept.position) == bytes.fromhex(kept.link)


_CHAIN_PAGE = (
    "SELECT c.position, c.content, c.link, e.originator_id, e.originator_version, e.topic,"  # noqa: S608
    f" e.state FROM event_chain c LEFT JOIN {EVENTS_TABLE} e ON e.notification_id = c.position"
    " WHERE c.gym_id = %s AND c.position > %s ORDER BY c.position LIMIT %s"
)
_CHECKPOINTS = (
    f"SELECT {CHECKPOINT_COLUMNS.replace('previous_position', 'coalesce(previous_position, -1)')}"  # noqa: S608
    " FROM chain_checkpoints WHERE gym_id = %s AND signature IS NOT NULL ORDER BY position"
)
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


def _chain(conn: Conn, ring: KeyRing, gym_id: UUID, report: Report) -> GymChain:
    chain = GymChain(gym_id, ring, report)
    after = 0
    while True:
        rows = conn.execute(_CHAIN_PAGE, (gym_id, after, PAGE)).fetchall()
        for position, content, link, stream_id, version, topic, state in rows:
            stored = None if stream_id is None else (stream_id, version, topic, bytes(state))
            chain.row(position, bytes(content), bytes(link), stored)
        if len(rows) < PAGE:
            break
        after = rows[-1][0]
    checkpoints = [checkpoint_of(r) for r in conn.execute(_CHECKPOINTS, (gym_id,))]
    head = conn.execute("SELECT position, link FROM chain_heads WHERE gym_id = %s", (gym_id,))
    found = head.fetchone()
    chain.finish(
        chain.checkpoints(checkpoints), None if found is None else (found[0], bytes(found[1]))
    )
    return chain


def _chained_through(conn: Conn) -> int:
    row = conn.execute(_CHAINED_THROUGH, (READ_MODEL,)).fetchone()
    return int(row[0]) if row else 0


def _unchained(report: Report, positions: Iterable[int], chained_through: int) -> None:
    for position in sorted(set(positions)):
        if position <= chained_through:
            report.add("inserted", position, "in the chained range but not in the chain")
        else:
            report.pending += 1


def verify_gym(conn: Conn, ring: KeyRing, gym_id: UUID) -> tuple[Report, GymChain]:
    """One gym's chain, reading only that gym's rows."""
    report = Report(gym_id)
    chain = _chain(conn, ring, gym_id, report)
    unchained = [r[0] for r in conn.execute(_UNCHAINED_OF_GYM, {"gym": gym_id})]
    _unchained(report, unchained, _chained_through(conn))
    return report, chain


def verify_checkpoint(conn: Conn, ring: KeyRing, kept: Checkpoint) -> Report:
    """The gym's chain, and whether it still extends a checkpoint kept earlier."""
    report, chain = verify_gym(conn, ring, kept.gym_id)
    if not kept.valid(ring):
        report.add("bad_checkpoint", kept.position, "the kept checkpoint's signature is invalid")
    elif not chain.extends(kept):
        report.add("not_extended", kept.position, "the log no longer holds this checkpoint")
    return report


def verify_all(conn: Conn, ring: KeyRing) -> Report:
    """Every gym the log or the chain knows of, and every event of the log."""
    report = Report(None)
    for (gym_id,) in conn.execute(_GYMS).fetchall():
        _chain(conn, ring, gym_id, report)
    _unchained(report, (r[0] for r in conn.execute(_UNCHAINED_ANY)), _chained_through(conn))
    return report


def verify_witnessed(conn: Conn, ring: KeyRing, witnessed: Iterable[Checkpoint]) -> Report:
    """Checkpoints the witness kept outside the database must all still be extended."""
    report = Report(None)
    for kept in witnessed:
        report.checkpoints += 1
        if not kept.valid(ring):
            report.add("bad_checkpoint", kept.position, f"witness line of gym {kept.gym_id}")
            continue
        row = conn.execute(
            "SELECT link FROM event_chain WHERE gym_id = %s AND position = %s",
            (kept.gym_id, kept.position),
        ).fetchone()
        if row is None or bytes(row[0]).hex() != kept.link:
            report.add("not_extended", kept.position, f"gym {kept.gym_id}: witnessed, now gone")
    return report
