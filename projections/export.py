"""A gym's signed history as NDJSON, and the offline check of such a file.

Line 1 is a header (`format`, `version`, `gym_id`, `exported_at`, `signed_through`).
Each event line carries what auditors read (position, type, time, actor, data without
secrets) and also the exact stored bytes (`state`, base64) with their `topic` and the
chain `link` (hex); checkpoint lines carry the Ed25519-signed heads. The export holds
the chain up to its last signed checkpoint, nothing unsigned.

`verify_export` trusts nothing in the file but the bytes: it recomputes every digest
and link from `state`, checks that the readable fields are what those bytes decode to,
and that the last event is covered by a checkpoint whose signature checks with a public
key the caller supplies (never one the file names). Because `state` holds the stored
bytes, an export also carries the password hashes of the gym's registration events:
handle it like a backup.
"""

import base64
import binascii
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg

from domain import gym_of
from infra.db import EVENTS_TABLE
from infra.event_codec import CODEC
from infra.signing import KeyRing
from projections.audit_chain import GENESIS, content_digest, link_hash
from projections.audit_verify import GymChain, Report
from projections.checkpoints import Checkpoint, signed_checkpoints
from projections.engine import Recorded
from projections.event_log import describe

FORMAT = "gymledger-export"
VERSION = 2
_READABLE = ("stream_id", "version", "type", "recorded_at", "actor", "correlation_id", "data")


def export_gym(conn: psycopg.Connection[Any], gym_id: UUID) -> Iterator[bytes]:
    encode = msgspec.json.Encoder().encode
    checkpoints = [checkpoint for checkpoint, _ in signed_checkpoints(conn, gym_id)]
    signed_through = checkpoints[-1].position if checkpoints else 0
    header = {
        "format": FORMAT,
        "version": VERSION,
        "gym_id": gym_id,
        "exported_at": datetime.now(UTC),
        "signed_through": signed_through,
    }
    yield encode(header) + b"\n"
    rows = conn.execute(
        "SELECT c.position, c.link, e.originator_id, e.originator_version, e.topic, e.state"  # noqa: S608
        f" FROM event_chain c LEFT JOIN {EVENTS_TABLE} e ON e.notification_id = c.position"
        " WHERE c.gym_id = %s AND c.position <= %s ORDER BY c.position",
        (gym_id, signed_through),
    )
    for position, link, stream_id, version, topic, state in rows:
        if stream_id is None:  # deleted from the log: the file says so, and fails to verify
            yield encode({"position": position, "link": bytes(link).hex(), "state": None}) + b"\n"
            continue
        stored = Recorded.decode(CODEC, position, stream_id, version, topic, state)
        record = msgspec.to_builtins(describe(stored))
        record.update(
            topic=topic, state=base64.b64encode(stored.state).decode(), link=bytes(link).hex()
        )
        yield encode(record) + b"\n"
    for checkpoint in checkpoints:
        yield encode({"checkpoint": checkpoint}) + b"\n"


class ExportError(ValueError):
    """The file is not an export this version can read."""


def verify_export(lines: Iterable[bytes], ring: KeyRing) -> Report:
    """Everything an export claims, checked against its own bytes and `ring`'s keys."""
    if not ring.public:
        raise ExportError("no public key to check signatures with (--public-key FILE)")
    try:
        decoded = [msgspec.json.decode(line) for line in lines if line.strip()]
    except msgspec.DecodeError as error:
        raise ExportError(f"not JSON lines: {error}") from None
    if not decoded or not isinstance(decoded[0], dict) or decoded[0].get("format") != FORMAT:
        raise ExportError("not a GymLedger export")
    if decoded[0].get("version") != VERSION:
        raise ExportError(f"export format version {decoded[0].get('version')}: export again")
    try:
        gym_id = UUID(str(decoded[0]["gym_id"]))
    except (KeyError, ValueError) as error:
        raise ExportError(f"the header names no gym: {error}") from None
    report = Report(gym_id)
    links: dict[int, bytes] = {}
    checkpoints: list[Checkpoint] = []
    previous, last_position = GENESIS, 0
    for item in decoded[1:]:
        if isinstance(item, dict) and "checkpoint" in item:
            try:
                checkpoints.append(msgspec.convert(item["checkpoint"], Checkpoint))
            except msgspec.ValidationError as error:
                report.add("bad_checkpoint", 0, f"unreadable checkpoint line: {error}")
            continue
        position, link, problem = _event_line(item, gym_id, previous, last_position)
        report.checked += 1
        if problem:
            report.add("altered", position, problem)
        links[position], previous, last_position = link, link, max(position, last_position)
    _covered(report, checkpoints, gym_id, ring, links, last_position)
    return report


def _event_line(
    item: Any, gym_id: UUID, previous: bytes, last_position: int
) -> tuple[int, bytes, str | None]:
    """(position, the link recomputed from the bytes, the first problem or None)."""
    try:
        position = int(item["position"])
        state = base64.b64decode(item["state"], validate=True)
        stream_id, version, topic = UUID(item["stream_id"]), int(item["version"]), item["topic"]
    except (KeyError, TypeError, ValueError, binascii.Error):
        named = item.get("position") if isinstance(item, dict) else None
        return (named if isinstance(named, int) else 0), previous, "event line without stored bytes"
    link = link_hash(previous, position, content_digest(stream_id, version, topic, state))
    if position <= last_position:
        return position, link, "out of log order"
    if link.hex() != item.get("link"):
        return position, link, "link does not follow from the stored bytes"
    try:
        stored = Recorded.decode(CODEC, position, stream_id, version, topic, state)
        record = msgspec.to_builtins(describe(stored))
        owner = gym_of(stored.event)
    except Exception:  # any undecodable bytes are a finding, whatever the cause
        return position, link, "stored bytes do not decode to an event"
    if owner != gym_id:
        return position, link, "event of another gym"
    for name in _READABLE:
        if record[name] != item.get(name):
            return position, link, f"'{name}' differs from the stored bytes"
    return position, link, None


def _covered(
    report: Report,
    checkpoints: list[Checkpoint],
    gym_id: UUID,
    ring: KeyRing,
    links: dict[int, bytes],
    last_position: int,
) -> None:
    """Every event must be covered by a valid checkpoint at or after it: the same checks
    of signatures, order and links as verification in the database."""
    chain = GymChain(gym_id, ring, report)
    signed_through = chain.checkpoints((c, links.get(c.position)) for c in checkpoints)
    unsigned = sum(1 for p in links if p > signed_through)
    last = (last_position, links[last_position]) if links else None
    chain.finish(signed_through, unsigned, last, head_row=last)
    if not links:
        report.add("unsigned_tail", 0, "the export holds no signed event")
