"""An attacker who can edit every row but holds no key: each attack must be found.

Each test was first run against the HMAC-only chain, where the hidden rewrite, the
truncation and the export forgeries all verified as `ok`.
"""

import base64
import json
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import psycopg
import pytest

from commands.application import GymLedger
from infra.signing import generate_private_pem, key_ring, public_pem
from projections.audit_chain import content_digest, link_hash
from projections.audit_verify import verify_checkpoint, verify_gym, verify_witnessed
from projections.checkpoints import Checkpoint
from projections.export import ExportError, export_gym, verify_export
from projections.read_model import read_model_projector
from projections.rebuild import rebuild_in_place
from projections.witness import witnessed
from tests.integration.helpers import register
from tests.integration.test_tamper_evidence import add_customers, check, project, run_cli


@pytest.fixture
def chained(fresh_database: str, settings: Any, tmp_path: Path) -> tuple[str, UUID, Path]:
    """Two gyms, several signed checkpoints each, every checkpoint also witnessed."""
    ledger = GymLedger(fresh_database)
    gyms = [register(ledger).id for _ in range(2)]
    add_customers(ledger, gyms, 4)
    ledger.close()
    witness = tmp_path / "witness"
    project(fresh_database, settings.key_ring(), str(witness))
    return fresh_database, gyms[0], witness


def chain_rows(conn: psycopg.Connection[Any], gym_id: UUID) -> list[Any]:
    return conn.execute(
        "SELECT c.position, e.originator_id, e.originator_version, e.topic, e.state"
        " FROM event_chain c JOIN gymledger_events e ON e.notification_id = c.position"
        " WHERE c.gym_id = %s ORDER BY c.position",
        (gym_id,),
    ).fetchall()


def kinds(result: dict[str, Any]) -> set[str]:
    return {p["kind"] for p in result["problems"]}


def latest_checkpoint(url: str, gym_id: UUID) -> Checkpoint:
    with psycopg.connect(url) as conn:
        export = list(export_gym(conn, gym_id))
    return msgspec.json.decode(json.dumps(json.loads(export[-1])["checkpoint"]), type=Checkpoint)


def test_clean_chain_verifies_with_checkpoint_and_witness(
    chained: tuple[str, UUID, Path], settings: Any
) -> None:
    url, gym_id, witness = chained
    ring = settings.key_ring()
    assert check(url, ring)["ok"] is True
    assert check(url, ring, gym_id)["signed_through"] > 0
    with psycopg.connect(url) as conn:
        assert verify_checkpoint(conn, ring, latest_checkpoint(url, gym_id)).ok
        assert verify_witnessed(conn, ring, witnessed(witness)).ok
    assert len(list(witnessed(witness))) >= 4


def test_hidden_rewrite_with_recomputed_links_and_dropped_checkpoints(
    chained: tuple[str, UUID, Path], settings: Any
) -> None:
    url, gym_id, _ = chained
    with psycopg.connect(url) as conn:
        rows = chain_rows(conn, gym_id)
        index = next(i for i, r in enumerate(rows) if r[3].startswith("CustomerRegistered"))
        target = rows[index][0]
        forged = bytes(rows[index][4]).replace(b'"T"', b'"Forged"')
        conn.execute(
            "UPDATE gymledger_events SET state = %s WHERE notification_id = %s", (forged, target)
        )
        previous = bytes(32)
        for position, stream, version, topic, state in rows:
            content = content_digest(
                stream, version, topic, forged if position == target else state
            )
            previous = link_hash(previous, position, content)
            conn.execute(
                "UPDATE event_chain SET content = %s, link = %s WHERE position = %s",
                (content, previous, position),
            )
        conn.execute(
            "DELETE FROM chain_checkpoints WHERE gym_id = %s AND position >= %s", (gym_id, target)
        )
        conn.execute("UPDATE chain_heads SET link = %s WHERE gym_id = %s", (previous, gym_id))
    for result in (check(url, settings.key_ring(), gym_id), check(url, settings.key_ring())):
        assert result["ok"] is False
        assert "unsigned_tail" in kinds(result)
        assert result["unsigned_events"] > 0


def test_a_deleted_checkpoint_in_the_middle_is_found(
    chained: tuple[str, UUID, Path], settings: Any
) -> None:
    url, gym_id, _ = chained
    with psycopg.connect(url) as conn:
        conn.execute(
            "DELETE FROM chain_checkpoints WHERE (gym_id, position) = (SELECT gym_id, position"
            " FROM chain_checkpoints WHERE gym_id = %s ORDER BY position LIMIT 1 OFFSET 1)",
            (gym_id,),
        )
    assert kinds(check(url, settings.key_ring(), gym_id)) == {"missing_checkpoint"}


def truncate_newest(url: str, gym_id: UUID, keep: int) -> None:
    """Delete the gym's newest events with their chain rows and checkpoints, and move the
    head back: what is left is an older chain that verifies on its own."""
    with psycopg.connect(url) as conn:
        rows = chain_rows(conn, gym_id)
        cut = rows[keep][0]
        found = conn.execute(
            "SELECT max(position) FROM chain_checkpoints WHERE gym_id = %s AND position < %s",
            (gym_id, cut),
        ).fetchone()
        assert found is not None
        signed = found[0]
        conn.execute(
            "DELETE FROM gymledger_events WHERE notification_id IN (SELECT position"
            " FROM event_chain WHERE gym_id = %s AND position > %s)",
            (gym_id, signed),
        )
        conn.execute(
            "DELETE FROM event_chain WHERE gym_id = %s AND position > %s", (gym_id, signed)
        )
        conn.execute(
            "DELETE FROM chain_checkpoints WHERE gym_id = %s AND position > %s", (gym_id, signed)
        )
        conn.execute(
            "UPDATE chain_heads SET position = c.position, link = c.link, signed_position = "
            " c.position FROM event_chain c WHERE chain_heads.gym_id = %s AND c.position = %s",
            (gym_id, signed),
        )


def test_truncation_is_caught_by_a_kept_checkpoint_and_by_the_witness(
    chained: tuple[str, UUID, Path], settings: Any, tmp_path: Path
) -> None:
    url, gym_id, witness = chained
    ring = settings.key_ring()
    kept = latest_checkpoint(url, gym_id)
    kept_file = tmp_path / "kept.json"
    kept_file.write_bytes(msgspec.json.encode(kept))
    assert run_cli(url, "audit", "verify", "--checkpoint", str(kept_file)).returncode == 0
    truncate_newest(url, gym_id, keep=4)
    # What the database alone cannot tell (SECURITY.md says so):
    assert check(url, ring, gym_id)["ok"] is True
    with psycopg.connect(url) as conn:
        against_kept = verify_checkpoint(conn, ring, kept).as_dict()
        against_witness = verify_witnessed(conn, ring, witnessed(witness)).as_dict()
    assert against_kept["ok"] is False
    assert kinds(against_kept) == {"not_extended"}
    assert against_witness["ok"] is False
    assert kinds(against_witness) == {"not_extended"}
    for option, value in (("--witness", witness), ("--checkpoint", kept_file)):
        cli = run_cli(url, "audit", "verify", option, str(value))
        assert cli.returncode == 1, option
        assert "not_extended" in cli.stderr


def test_chain_rows_and_head_removed_while_events_remain(
    chained: tuple[str, UUID, Path], settings: Any
) -> None:
    url, gym_id, _ = chained
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM event_chain WHERE gym_id = %s", (gym_id,))
        conn.execute("DELETE FROM chain_checkpoints WHERE gym_id = %s", (gym_id,))
        conn.execute("DELETE FROM chain_heads WHERE gym_id = %s", (gym_id,))
    for result in (check(url, settings.key_ring(), gym_id), check(url, settings.key_ring())):
        assert result["ok"] is False
        assert "inserted" in kinds(result)


def test_a_moved_head_is_found(chained: tuple[str, UUID, Path], settings: Any) -> None:
    url, gym_id, _ = chained
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM chain_heads WHERE gym_id = %s", (gym_id,))
    assert kinds(check(url, settings.key_ring(), gym_id)) == {"head_mismatch"}


def test_a_checkpoint_signed_by_another_key_is_refused(
    chained: tuple[str, UUID, Path], settings: Any
) -> None:
    url, gym_id, _ = chained
    stranger = key_ring(generate_private_pem())
    assert check(url, stranger, gym_id)["ok"] is False
    with psycopg.connect(url) as conn:
        report = verify_gym(conn, stranger, gym_id)
    assert {p.kind for p in report.problems} == {"bad_checkpoint", "unsigned_tail"}


def test_verification_never_trusts_chain_heads_for_the_list_of_gyms(
    chained: tuple[str, UUID, Path], settings: Any
) -> None:
    url, gym_id, _ = chained
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE gymledger_events SET state = state || ' '::bytea"
                     " WHERE originator_id = %s", (gym_id,))  # fmt: skip
        conn.execute("DELETE FROM chain_heads")
        conn.execute("DELETE FROM event_index")
    result = check(url, settings.key_ring())
    assert "altered" in kinds(result)


# Export forgeries: each edit of a correct export must fail verification.


def export_lines(url: str, gym_id: UUID) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        return [json.loads(line) for line in export_gym(conn, gym_id)]


def verify_lines(items: list[dict[str, Any]], ring: Any) -> dict[str, Any]:
    return verify_export([json.dumps(i).encode() for i in items], ring).as_dict()


def first_event(items: list[dict[str, Any]], type_name: str) -> dict[str, Any]:
    return next(i for i in items if i.get("type") == type_name)


def forge_data(items: list[dict[str, Any]]) -> None:
    first_event(items, "CustomerRegistered")["data"]["first_name"] = "Forged"


def forge_actor(items: list[dict[str, Any]]) -> None:
    first_event(items, "CustomerRegistered")["actor"] = "someone-else"


def forge_time(items: list[dict[str, Any]]) -> None:
    first_event(items, "CustomerRegistered")["recorded_at"] = "2001-01-01T00:00:00Z"


def forge_type(items: list[dict[str, Any]]) -> None:
    first_event(items, "CustomerRegistered")["type"] = "CustomerRemoved"


def forge_bytes(items: list[dict[str, Any]]) -> None:
    event = first_event(items, "CustomerRegistered")
    state = base64.b64decode(event["state"]).replace(b'"T"', b'"Forged"')
    event["state"] = base64.b64encode(state).decode()
    event["data"]["first_name"] = "Forged"


def drop_checkpoints(items: list[dict[str, Any]]) -> None:
    items[:] = [i for i in items if "checkpoint" not in i]


def insert_unlinked_line(items: list[dict[str, Any]]) -> None:
    copy = dict(first_event(items, "CustomerRegistered"), position=items[2]["position"] + 1)
    items.insert(3, copy)


def drop_an_event(items: list[dict[str, Any]]) -> None:
    items.remove(first_event(items, "CustomerRegistered"))


def unlink_a_line(items: list[dict[str, Any]]) -> None:
    first_event(items, "CustomerRegistered")["link"] = None


@pytest.mark.parametrize(
    "forge",
    [
        forge_data,
        forge_actor,
        forge_time,
        forge_type,
        forge_bytes,
        drop_checkpoints,
        insert_unlinked_line,
        drop_an_event,
        unlink_a_line,
    ],
)
def test_a_forged_export_does_not_verify(
    chained: tuple[str, UUID, Path], settings: Any, forge: Any
) -> None:
    url, gym_id, _ = chained
    items = export_lines(url, gym_id)
    assert verify_lines(items, settings.key_ring())["ok"] is True
    forge(items)
    result = verify_lines(items, settings.key_ring())
    assert result["ok"] is False, forge.__name__


def test_an_export_needs_a_key_and_the_right_one(
    chained: tuple[str, UUID, Path], settings: Any, tmp_path: Path
) -> None:
    url, gym_id, _ = chained
    items = export_lines(url, gym_id)
    with pytest.raises(ExportError, match="no public key"):
        verify_lines(items, key_ring(None))
    assert verify_lines(items, key_ring(generate_private_pem()))["ok"] is False
    path = tmp_path / "gym.ndjson"
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    public = tmp_path / "public.pem"
    public.write_text(run_cli(url, "audit", "public-key").stdout)
    good = run_cli(url, "verify", str(path), "--public-key", str(public))
    assert good.returncode == 0, good.stderr
    stranger = tmp_path / "stranger.pem"
    stranger.write_text(public_pem(next(iter(key_ring(generate_private_pem()).public.values()))))
    assert run_cli(url, "verify", str(path), "--public-key", str(stranger)).returncode == 1
    forge_data(items)
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    bad = run_cli(url, "verify", str(path), "--public-key", str(public))
    assert bad.returncode == 1
    assert "NOT VERIFIED" in bad.stderr


def test_a_rebuild_never_re_signs_a_chain_whose_rows_were_removed(
    chained: tuple[str, UUID, Path], settings: Any
) -> None:
    """Delete a gym's chain and edit its events, then wait for a routine rebuild: the
    projector must park rather than chain and sign the edited history."""
    url, gym_id, _ = chained
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE gymledger_events SET state = state || ' '::bytea WHERE originator_id = %s",
            (gym_id,),
        )
        for table in ("event_chain", "chain_checkpoints", "chain_heads"):
            conn.execute(f"DELETE FROM {table} WHERE gym_id = %s", (gym_id,))  # noqa: S608
        projector = read_model_projector(settings.key_ring(), batch_size=3)
        rebuild_in_place(conn, projector)
        signed = conn.execute(
            "SELECT count(*) FROM chain_checkpoints WHERE gym_id = %s", (gym_id,)
        ).fetchone()
        parked = conn.execute("SELECT error FROM projection_faults").fetchone()
    assert signed == (0,)
    assert parked is not None
    assert "not chained" in parked[0]
    assert check(url, settings.key_ring())["ok"] is False


def test_verification_of_a_gym_being_written_to_finds_nothing(
    client: Any, settings: Any, ledger: GymLedger
) -> None:
    """Each verification reads one snapshot: batches committing meanwhile are no alarm."""
    gym_id = register(ledger).id
    writing = threading.Event()
    writing.set()

    def write() -> None:
        while writing.is_set():
            add_customers(ledger, [gym_id], 1)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with psycopg.connect(settings.database_url) as conn:
            reports = [verify_gym(conn, settings.key_ring(), gym_id) for _ in range(40)]
    finally:
        writing.clear()
        writer.join()
    assert [r.problems for r in reports if r.problems] == []
    assert reports[-1].checked > reports[0].checked  # the writes really ran meanwhile


def test_a_witness_that_cannot_be_written_does_not_stop_the_projector(
    fresh_database: str, settings: Any, tmp_path: Path
) -> None:
    ledger = GymLedger(fresh_database)
    witness = tmp_path / "witness"
    projector = read_model_projector(settings.key_ring(), witness_dir=str(witness))
    try:
        with psycopg.connect(fresh_database) as conn:
            projector.ensure_position_row(conn)
            witness.rename(tmp_path / "elsewhere")
            witness.write_text("not a directory")  # every append now fails
            first = register(ledger).id
            assert projector.catch_up(conn) > 0  # committed, not parked
            witness.unlink()
            (tmp_path / "elsewhere").rename(witness)
            register(ledger)
            assert projector.catch_up(conn) > 0
            assert conn.execute("SELECT count(*) FROM projection_faults").fetchone() == (0,)
    finally:
        ledger.close()
    witnessed_gyms = {c.gym_id for c in witnessed(witness)}
    assert first in witnessed_gyms  # the lines that failed were written later


@pytest.mark.parametrize(
    "content", [b"", b"not json\n", b'{"format": "gymledger-export", "version": 2}\n', b"[1]\n"]
)
def test_a_malformed_export_is_refused_without_a_traceback(
    chained: tuple[str, UUID, Path], tmp_path: Path, content: bytes
) -> None:
    url, _, _ = chained
    path = tmp_path / "bad.ndjson"
    path.write_bytes(content)
    result = run_cli(url, "verify", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot verify" in result.stderr


def test_heads_signed_only_by_the_old_hmac_are_signed_once_after_the_upgrade(
    chained: tuple[str, UUID, Path], settings: Any
) -> None:
    url, gym_id, _ = chained
    with psycopg.connect(url) as conn:  # what migration 0012 leaves of an HMAC-era chain
        conn.execute("UPDATE chain_checkpoints SET signature = NULL, key_id = NULL")
        conn.execute("UPDATE chain_heads SET signed_position = 0")
    assert "unsigned_tail" in kinds(check(url, settings.key_ring(), gym_id))
    signed = run_cli(url, "audit", "sign-heads")
    assert signed.returncode == 0, signed.stderr
    assert "signed 2 chain heads" in signed.stdout
    assert check(url, settings.key_ring())["ok"] is True
    assert "signed 0 chain heads" in run_cli(url, "audit", "sign-heads").stdout
