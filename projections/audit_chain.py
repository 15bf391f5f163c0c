"""Tamper evidence: a hash chain per gym over the event log, with signed checkpoints.

Each event the projector reads is linked to the previous event of the same gym:
    content = sha256(stream id | version | topic | sha256(stored state))
    link    = sha256(previous link | position | content)
After every batch, the head of each gym's chain touched is signed with the Ed25519 key
(infra/signing.py), which never enters the database, and each checkpoint names the one
before it. Someone able to edit rows can recompute links, but not signatures, so
`projections/audit_verify.py` finds altered, deleted, inserted and reordered events, an
unsigned head and deleted checkpoints. A signed checkpoint is also appended to the
witness directory when one is configured, outside the database, which is what shows
truncation and rollback. Per gym rather than global: a gym's export verifies on its
own, an owner can verify their own history, and gyms' chains never contend.

The chain is never rebuilt (that would launder tampering); events recorded after the
projector's last batch are not yet covered.
"""

import contextlib
import hashlib
import logging
import struct
from datetime import UTC, datetime
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow

from domain import gym_of
from infra import metrics
from infra.signing import KeyRing
from projections.checkpoints import CHECKPOINT_COLUMNS, Checkpoint, sign_checkpoint
from projections.engine import BulkInsert, Projection, Recorded, in_pipeline
from projections.witness import Witness

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.event_chain (
    position bigint PRIMARY KEY,
    gym_id uuid NOT NULL,
    content bytea NOT NULL,
    link bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS event_chain_gym ON {schema}.event_chain (gym_id, position);
CREATE TABLE IF NOT EXISTS {schema}.chain_heads (
    gym_id uuid PRIMARY KEY,
    position bigint NOT NULL,
    link bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.chain_checkpoints (
    gym_id uuid NOT NULL,
    position bigint NOT NULL,
    link bytea NOT NULL,
    mac bytea NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gym_id, position)
);
"""

# Ed25519 replaces the HMAC: rows signed with the HMAC alone (signature NULL) are no
# longer evidence of anything and verification ignores them.
SIGNATURES_MIGRATION_SQL = """
ALTER TABLE {schema}.chain_checkpoints ALTER COLUMN mac DROP NOT NULL;
ALTER TABLE {schema}.chain_checkpoints ADD COLUMN IF NOT EXISTS previous_position bigint;
ALTER TABLE {schema}.chain_checkpoints ADD COLUMN IF NOT EXISTS key_id text;
ALTER TABLE {schema}.chain_checkpoints ADD COLUMN IF NOT EXISTS signature bytea;
ALTER TABLE {schema}.chain_heads ADD COLUMN IF NOT EXISTS signed_position bigint NOT NULL DEFAULT 0;
"""

GENESIS = bytes(32)
MAX_UNWITNESSED = 100_000
log = logging.getLogger("gymledger.audit")


def content_digest(stream_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    topic_bytes = topic.encode()
    return hashlib.sha256(
        stream_id.bytes
        + struct.pack(">qI", version, len(topic_bytes))
        + topic_bytes
        + hashlib.sha256(state).digest()
    ).digest()


def link_hash(previous: bytes, position: int, content: bytes) -> bytes:
    return hashlib.sha256(previous + struct.pack(">q", position) + content).digest()


class ChainRowsMissing(RuntimeError):
    """The projector refuses to re-chain (and so re-sign) history: it parks instead."""


class AuditChainProjection(Projection):
    name = "audit_chain"
    tables: tuple[str, ...] = ("event_chain", "chain_heads", "chain_checkpoints")
    rebuildable = False

    def __init__(self, ring: KeyRing, witness: Witness | None = None) -> None:
        self.ring = ring
        self.witness = witness
        # This batch's view of each head: (position, link, position of its last checkpoint).
        self._heads: dict[UUID, tuple[int, bytes, int]] = {}
        self._touched: set[UUID] = set()
        self._signed: list[Checkpoint] = []
        self._unwitnessed: list[Checkpoint] = []  # signed and committed, not yet witnessed
        self._chained_through = 0
        self._links = BulkInsert(
            "event_chain",
            {"position": "bigint", "gym_id": "uuid", "content": "bytea", "link": "bytea"},
        )

    def begin_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        self._heads.clear()
        self._touched.clear()
        self._signed.clear()
        row = cur.execute("SELECT coalesce(max(position), 0) FROM event_chain").fetchone()
        self._chained_through = int(row[0]) if row else 0
        self._links.rows.clear()

    def _head(self, cur: psycopg.Cursor[TupleRow], gym_id: UUID) -> tuple[int, bytes, int]:
        if gym_id not in self._heads:
            row = cur.execute(
                "SELECT position, link, signed_position FROM chain_heads"
                " WHERE gym_id = %s FOR UPDATE",
                (gym_id,),
            ).fetchone()
            self._heads[gym_id] = (
                (0, GENESIS, 0) if row is None else (row[0], bytes(row[1]), row[2])
            )
        return self._heads[gym_id]

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        gym_id = gym_of(recorded.event)
        head_position, previous, signed = self._head(cur, gym_id)
        if head_position >= recorded.position:
            return  # already chained (a rebuild replays the log; the chain stays as it is)
        if recorded.position <= self._chained_through:
            # Every event up to there was chained when it was new: this one's chain rows
            # were removed. Chaining it now would sign whatever the log holds today.
            raise ChainRowsMissing(
                f"event {recorded.position} of gym {gym_id} lies inside the chained range"
                " but is not chained; run `gymledger audit verify`"
            )
        content = content_digest(
            recorded.stream_id, recorded.version, recorded.topic, recorded.state
        )
        link = link_hash(previous, recorded.position, content)
        self._links.add(recorded.position, gym_id, content, link)
        self._heads[gym_id] = (recorded.position, link, signed)
        self._touched.add(gym_id)

    def end_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        """Write the links, then move and sign the head of every chain extended."""
        self._links.flush(cur)
        now = datetime.now(UTC)
        # Two statements per gym, in one round trip: in the batch's own pipeline when it
        # has one (a pipeline opened inside another syncs on entry and exit).
        with contextlib.nullcontext() if in_pipeline(cur) else cur.connection.pipeline():
            for gym_id in sorted(self._touched):
                position, link, previous = self._heads[gym_id]
                checkpoint = sign_checkpoint(self.ring, gym_id, position, link, previous, now)
                cur.execute(
                    "INSERT INTO chain_heads (gym_id, position, link, signed_position)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (gym_id) DO UPDATE"
                    " SET position = excluded.position, link = excluded.link,"
                    " signed_position = excluded.signed_position",
                    (gym_id, position, link, position),
                )
                cur.execute(
                    f"INSERT INTO chain_checkpoints ({CHECKPOINT_COLUMNS})"  # noqa: S608
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (
                        gym_id,
                        position,
                        link,
                        previous,
                        now,
                        checkpoint.key_id,
                        bytes.fromhex(checkpoint.signature),
                    ),
                )
                self._signed.append(checkpoint)
        self._touched.clear()

    def after_commit(self) -> None:
        """Only what committed goes to the witness: a rolled-back checkpoint there would
        read as a truncated database later. A witness that cannot be written (disk full,
        a lost mount) must not stop the read model: the lines wait and are retried after
        the next batch, and the failure is logged and counted."""
        self._unwitnessed += self._signed
        self._signed = []
        if self.witness is None or not self._unwitnessed:
            return
        try:
            self.witness.append(self._unwitnessed)
        except OSError:
            metrics.WITNESS_FAILURES.inc()
            log.exception("witness not written; retrying after the next batch",
                          extra={"checkpoints": len(self._unwitnessed)})  # fmt: skip
            del self._unwitnessed[:-MAX_UNWITNESSED]  # bounded: the newest matter most
            return
        self._unwitnessed = []


def sign_uncovered_heads(
    conn: psycopg.Connection[TupleRow], ring: KeyRing, witness: Witness | None = None
) -> int:
    """Sign every chain head no Ed25519 checkpoint covers yet: once, after upgrading from
    HMAC checkpoints, whose rows no longer count. It vouches for the chain as it stands,
    so run `gymledger audit verify` on the old release first. Returns heads signed."""
    now = datetime.now(UTC)
    signed: list[Checkpoint] = []
    with conn.transaction():
        heads = conn.execute(
            "SELECT gym_id, position, link, signed_position FROM chain_heads"
            " WHERE signed_position < position ORDER BY gym_id FOR UPDATE"
        ).fetchall()
        for gym_id, position, link, previous in heads:
            checkpoint = sign_checkpoint(ring, gym_id, position, bytes(link), previous, now)
            conn.execute(
                f"INSERT INTO chain_checkpoints ({CHECKPOINT_COLUMNS})"  # noqa: S608
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (gym_id, position) DO UPDATE"
                " SET previous_position = excluded.previous_position, key_id = excluded.key_id,"
                " signature = excluded.signature, signed_at = excluded.signed_at",
                (gym_id, position, link, previous, now, checkpoint.key_id,
                 bytes.fromhex(checkpoint.signature)),
            )  # fmt: skip
            conn.execute(
                "UPDATE chain_heads SET signed_position = position WHERE gym_id = %s", (gym_id,)
            )
            signed.append(checkpoint)
    if witness is not None and signed:
        witness.append(signed)
    return len(signed)
