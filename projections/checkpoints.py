"""Signed checkpoints of the audit chain, in the one shape the API, exports and the
witness share. `link` and `signature` are lowercase hex, `signed_at` RFC 3339 in UTC;
what the signature covers is in infra/signing.py."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
import psycopg
from msgspec import Meta
from psycopg.rows import TupleRow

from infra.signing import ALGORITHM, KeyRing, checkpoint_message


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A signed chain head, as the API, exports and the witness carry it.
    `link` and `signature` are lowercase hex; `signed_at` is RFC 3339 in UTC."""

    gym_id: UUID
    position: Annotated[int, Meta(ge=1, le=2**63 - 1)]
    link: Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]
    previous_position: Annotated[int, Meta(ge=0, le=2**63 - 1)]
    signed_at: Annotated[datetime, Meta(tz=True)]
    key_id: Annotated[str, Meta(pattern="^[0-9a-f]{16}$")]
    algorithm: Literal["Ed25519"] = ALGORITHM
    signature: Annotated[str, Meta(pattern="^[0-9a-f]{128}$")]

    def message(self) -> bytes:
        return checkpoint_message(
            self.gym_id,
            self.position,
            bytes.fromhex(self.link),
            self.previous_position,
            self.signed_at,
        )

    def valid(self, ring: KeyRing) -> bool:
        try:
            signature = bytes.fromhex(self.signature)
            message = self.message()
        except ValueError:
            return False
        return ring.verify(self.key_id, message, signature)


def sign_checkpoint(
    ring: KeyRing, gym_id: UUID, position: int, link: bytes, previous: int, at: datetime
) -> Checkpoint:
    kid, signature = ring.sign(checkpoint_message(gym_id, position, link, previous, at))
    return Checkpoint(
        gym_id=gym_id,
        position=position,
        link=link.hex(),
        previous_position=previous,
        signed_at=at,
        key_id=kid,
        signature=signature.hex(),
    )


CHECKPOINT_COLUMNS = "gym_id, position, link, previous_position, signed_at, key_id, signature"


def checkpoint_of(row: TupleRow) -> Checkpoint:
    """A row of CHECKPOINT_COLUMNS (in that order) as a Checkpoint."""
    gym_id, position, link, previous, signed_at, kid, signature = row
    return Checkpoint(
        gym_id=gym_id,
        position=int(position),
        link=bytes(link).hex(),
        previous_position=int(previous),
        signed_at=signed_at.astimezone(UTC),
        key_id=str(kid),
        signature=bytes(signature).hex(),
    )


# Rows signed with the old HMAC alone (signature NULL) are evidence of nothing: left out.
_SELECTED = (
    "k.gym_id, k.position, k.link, coalesce(k.previous_position, -1), k.signed_at,"
    " k.key_id, k.signature"
)


def signed_checkpoints(
    conn: psycopg.Connection[Any], gym_id: UUID
) -> list[tuple[Checkpoint, bytes | None]]:
    """The gym's signed checkpoints in order, each with the link the chain holds today
    at its position (None where that chain row is gone)."""
    rows = conn.execute(
        f"SELECT {_SELECTED}, c.link FROM chain_checkpoints k"  # noqa: S608 - constants only
        " LEFT JOIN event_chain c ON c.position = k.position AND c.gym_id = k.gym_id"
        " WHERE k.gym_id = %s AND k.signature IS NOT NULL ORDER BY k.position",
        (gym_id,),
    ).fetchall()
    return [(checkpoint_of(r[:-1]), None if r[-1] is None else bytes(r[-1])) for r in rows]


async def latest_checkpoint(conn: psycopg.AsyncConnection[Any], gym_id: UUID) -> Checkpoint | None:
    cur = await conn.execute(
        f"SELECT {_SELECTED} FROM chain_checkpoints k"  # noqa: S608 - constants only
        " WHERE k.gym_id = %s AND k.signature IS NOT NULL"
        " ORDER BY k.position DESC LIMIT 1",
        (gym_id,),
    )
    row = await cur.fetchone()
    return None if row is None else checkpoint_of(row)
