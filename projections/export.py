"""A gym's full history as NDJSON, and the offline check of such a file.

Each event line carries what auditors read (type, time, actor, data without
secrets) plus `state_sha256` (digest of the exact stored bytes) and the chain
`link`; checkpoint lines carry the signed heads. `verify_export` re-links the
chain from the file alone, and with the HMAC key also checks every signature.
"""

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg

from projections.audit_chain import (
    GENESIS,
    Problem,
    Report,
    content_from_state_digest,
    link_hash,
    sign,
)
from projections.event_log import all_gym_events, describe

FORMAT = "gymledger-export"


def export_gym(conn: psycopg.Connection[Any], gym_id: UUID) -> Iterator[bytes]:
    encode = msgspec.json.Encoder().encode
    yield (
        encode({"format": FORMAT, "version": 1, "gym_id": gym_id, "exported_at": datetime.now(UTC)})
        + b"\n"
    )
    links = {
        position: bytes(link).hex()
        for position, link in conn.execute(
            "SELECT position, link FROM event_chain WHERE gym_id = %s", (gym_id,)
        )
    }
    for row in all_gym_events(conn, gym_id):
        record = msgspec.to_builtins(describe(row))
        record["topic"] = row.topic
        record["state_sha256"] = hashlib.sha256(row.state).hexdigest()
        record["link"] = links.get(row.position)  # None: recorded after the last chaining
        yield encode(record) + b"\n"
    for position, link, mac in conn.execute(
        "SELECT position, link, mac FROM chain_checkpoints WHERE gym_id = %s ORDER BY position",
        (gym_id,),
    ):
        checkpoint = {"position": position, "link": bytes(link).hex(), "mac": bytes(mac).hex()}
        yield encode({"checkpoint": checkpoint}) + b"\n"


def verify_export(lines: Iterable[bytes], key: bytes | None) -> Report:
    """Re-link the chain of an export; with `key`, check the signed checkpoints too."""
    decoded = [msgspec.json.decode(line) for line in lines if line.strip()]
    if not decoded or decoded[0].get("format") != FORMAT:
        raise ValueError("not a GymLedger export")
    gym_id = UUID(decoded[0]["gym_id"])
    report = Report(gym_id)
    links: dict[int, str] = {}
    previous = GENESIS
    for item in decoded[1:]:
        if "checkpoint" in item:
            _check_checkpoint(item["checkpoint"], gym_id, key, links, report)
            continue
        if item["link"] is None:
            continue  # not chained yet when exported
        report.checked += 1
        content = content_from_state_digest(
            UUID(item["stream_id"]),
            item["version"],
            item["topic"],
            bytes.fromhex(item["state_sha256"]),
        )
        expected = link_hash(previous, item["position"], content)
        if expected.hex() != item["link"]:
            report.problems.append(Problem("altered", item["position"], "link does not match"))
        links[item["position"]] = item["link"]
        previous = bytes.fromhex(item["link"])
    return report


def _check_checkpoint(
    checkpoint: dict[str, Any],
    gym_id: UUID,
    key: bytes | None,
    links: dict[int, str],
    report: Report,
) -> None:
    position = checkpoint["position"]
    if key is None:
        return
    report.checkpoints += 1
    expected = sign(key, gym_id, position, bytes.fromhex(checkpoint["link"]))
    if not hmac.compare_digest(expected.hex(), checkpoint["mac"]):
        report.problems.append(Problem("bad_checkpoint", position, "signature invalid"))
    elif links.get(position) != checkpoint["link"]:
        report.problems.append(Problem("chain_broken", position, "differs from checkpoint"))
