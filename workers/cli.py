"""`gymledger`: the operators' and auditors' command line.

    gymledger run                          API, projector and worker (what `make run` does)
    gymledger migrate                      create the event store and read tables
    gymledger projections rebuild [--blue-green]
    gymledger projections resume           after fixing the event a projection parked at
    gymledger projections status           lag, mail counts, and where and why it is parked
    gymledger replay --verify              rebuild into a scratch schema, compare with live
                                           (both only read live tables: ACCESS SHARE)
    gymledger export --gym ID [-o FILE]    a gym's history as NDJSON
    gymledger verify FILE [--public-key PEM]   check an export offline: bytes, links, signatures
    gymledger audit verify [--gym ID] [--checkpoint FILE] [--witness DIR]
                                           check the stored hash chains for tampering
    gymledger audit public-key             the public keys auditors verify checkpoints with
    gymledger audit sign-heads             once after upgrading from HMAC checkpoints
    gymledger backup DIR | restore DIR     the tables a rebuild cannot recreate

Without DATABASE_URL/REDIS_URL the commands use the embedded servers under .data/.
"""

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import psycopg

from infra.db import EVENTS_TABLE
from infra.embedded import services
from infra.logs import configure_logging
from infra.settings import ConfigError, Settings, load_key_ring, load_settings
from infra.signing import KeyRing, SigningKeyError, key_ring, public_pem

DATA_DIR = Path(".data")


@contextlib.contextmanager
def _settings() -> Iterator[Settings]:
    with services(DATA_DIR) as urls:
        os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = urls.database_url, urls.redis_url
        yield load_settings()


def _require_signing_key(settings: Settings) -> None:
    """Rebuilds chain (and so sign) whatever the chain does not cover yet."""
    if settings.key_ring().signing is None:
        raise ConfigError(["AUDIT_SIGNING_KEY is required: this command signs the audit chain"])


def _print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value)).decode() + "\n")


def _migrate(_: argparse.Namespace) -> int:
    from workers.setup import migrate

    with _settings() as settings:
        print("applied:", ", ".join(migrate(settings.database_url)) or "nothing")
    return 0


def _resume(_: argparse.Namespace) -> int:
    """Clear a parked projection after the cause is fixed; the projector retries it."""
    from projections.engine import resume
    from projections.read_model import READ_MODEL

    with _settings() as settings, psycopg.connect(settings.database_url) as conn:
        parked = resume(conn, READ_MODEL)
    print("not parked" if parked is None else f"resumed at position {parked[0]} (was: {parked[1]})")
    return 0


def _status(_: argparse.Namespace) -> int:
    """What /health shows, plus what it keeps from anonymous callers: the parked error."""
    import asyncio

    from projections.monitoring import pipeline_status
    from projections.read_model import READ_MODEL

    async def read(url: str) -> Any:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await pipeline_status(conn, READ_MODEL)

    with _settings() as settings:
        status = asyncio.run(read(settings.database_url))
    parked = None
    if status.parked_at is not None:
        parked = {
            "position": status.parked_at,
            "error": status.parked_error,
            "failed_at": status.parked_since,
        }
    fields = ("head", "position", "lag_events", "lag_seconds", "mail_pending", "mail_failed")
    _print_json({**{f: getattr(status, f) for f in fields}, "parked": parked})
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from projections.read_model import read_model_projector
    from projections.rebuild import (
        LiveTablesBusy,
        SchemaBehind,
        blue_green_rebuild,
        rebuild_in_place,
        terminal_progress,
    )
    from workers.setup import migrate

    with _settings() as settings:
        if args.blue_green:
            # No migrating here: DDL would lock the live tables this build promises
            # only to read. An out-of-date schema is refused instead.
            try:
                events = blue_green_rebuild(settings.database_url, terminal_progress)
            except SchemaBehind as error:
                print(error, file=sys.stderr)
                return 2
            except LiveTablesBusy as error:
                print(f"\n{error}", file=sys.stderr)
                return 1
            print(f"\nrebuilt read model from {events} events (blue/green switch-over)")
            return 0
        _require_signing_key(settings)  # the chain is part of an in-place rebuild
        migrate(settings.database_url)
        projector = read_model_projector(
            settings.key_ring(), settings.projector_batch_size, settings.audit_witness_dir
        )
        with psycopg.connect(settings.database_url) as conn:
            projector.ensure_position_row(conn)
            events = rebuild_in_place(conn, projector)
    print(f"rebuilt read model from {events} events")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from projections.rebuild import SchemaBehind, replay_and_compare, terminal_progress

    if not args.verify:
        print("nothing to do: use --verify", file=sys.stderr)
        return 2
    with _settings() as settings:
        try:
            events, found = replay_and_compare(settings.database_url, terminal_progress)
        except SchemaBehind as error:
            print(error, file=sys.stderr)
            return 2
    print(f"\nreplayed {events} events into a scratch schema")
    if found:
        print("differences between replay and live read tables:")
        _print_json(found)
        return 1
    print("read tables equal the replay")
    return 0


def _export(args: argparse.Namespace) -> int:
    from projections.export import export_gym

    with _settings() as settings, psycopg.connect(settings.database_url) as conn:
        out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
        try:
            for line in export_gym(conn, args.gym):
                out.write(line)
        finally:
            if args.output:
                out.close()
    return 0


def _verify_file(args: argparse.Namespace) -> int:
    from projections.export import ExportError, verify_export

    try:
        ring = key_ring(None, args.public_key) if args.public_key else load_key_ring()
        with open(args.file, "rb") as lines:
            report = verify_export(lines, ring)
    except (ExportError, SigningKeyError, OSError) as error:
        print(f"cannot verify {args.file}: {error}", file=sys.stderr)
        return 1
    return _report(report)


def _report(report: Any) -> int:
    """Print a verification report; exit 0 only when nothing was found."""
    _print_json(report.as_dict())
    if not report.ok:
        first = report.as_dict()["first_problem"]
        problem = f"{first['kind']} at {first['position']}: {first['detail']}"
        print(f"NOT VERIFIED: {problem}", file=sys.stderr)
    return 0 if report.ok else 1


def full_verification(
    conn: psycopg.Connection[Any], ring: KeyRing, gym: UUID | None, witness_dir: str
) -> Any:
    """The whole chain (or one gym's), and every checkpoint the witness kept."""
    from projections.audit_verify import verify_all, verify_gym, verify_witnessed
    from projections.witness import witnessed

    report = verify_gym(conn, ring, gym) if gym else verify_all(conn, ring)
    if witness_dir:
        kept = (c for c in witnessed(witness_dir) if gym is None or c.gym_id == gym)
        found = verify_witnessed(conn, ring, kept)
        report.problems += found.problems
        report.checkpoints += found.checkpoints
    return report


def _audit_verify(args: argparse.Namespace) -> int:
    from projections.audit_verify import verify_checkpoint
    from projections.checkpoints import Checkpoint

    with _settings() as settings, psycopg.connect(settings.database_url) as conn:
        ring = settings.key_ring()
        if args.checkpoint:
            try:
                with open(args.checkpoint, "rb") as kept_file:
                    kept = msgspec.json.decode(kept_file.read(), type=Checkpoint)
            except (OSError, msgspec.DecodeError) as error:
                print(f"cannot read the checkpoint {args.checkpoint}: {error}", file=sys.stderr)
                return 2
            return _report(verify_checkpoint(conn, ring, kept))
        witness = args.witness or settings.audit_witness_dir
        try:
            return _report(full_verification(conn, ring, args.gym, witness))
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as error:
            print(f"cannot read the witness {witness}: {error}", file=sys.stderr)
            return 2


def _audit_sign_heads(_: argparse.Namespace) -> int:
    from projections.audit_chain import sign_uncovered_heads
    from projections.witness import Witness

    with _settings() as settings, psycopg.connect(settings.database_url) as conn:
        _require_signing_key(settings)
        witness = Witness(settings.audit_witness_dir) if settings.audit_witness_dir else None
        signed = sign_uncovered_heads(conn, settings.key_ring(), witness)
    print(f"signed {signed} chain heads that no Ed25519 checkpoint covered")
    return 0


def _audit_public_key(_: argparse.Namespace) -> int:
    for kid, public in load_key_ring().public.items():
        print(f"# key_id {kid} (Ed25519)\n{public_pem(public)}", end="")
    return 0


# What a rebuild cannot recreate: the log, what was mailed, and what was signed.
BACKUP_TABLES = (
    EVENTS_TABLE, "mail_outbox", "event_chain", "chain_heads", "chain_checkpoints",
)  # fmt: skip
SERIAL_COLUMNS = {EVENTS_TABLE: "notification_id", "mail_outbox": "id"}


def _backup(args: argparse.Namespace) -> int:
    from infra.backup import backup

    with _settings() as settings:
        counts = backup(settings.database_url, BACKUP_TABLES, Path(args.directory))
    print(f"backed up {counts} to {args.directory}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    """Load a backup, verify its chain (and the witness), and only then rebuild: a
    rebuild chains and signs whatever the chain does not cover yet, so an altered
    backup must be refused before that can launder it."""
    from infra.backup import restore
    from workers.setup import migrate

    with _settings() as settings:
        _require_signing_key(settings)
        migrate(settings.database_url)
        counts = restore(settings.database_url, Path(args.directory), SERIAL_COLUMNS)
        print(f"restored {counts}; verifying the audit chain")
        with psycopg.connect(settings.database_url) as conn:
            ring, witness = settings.key_ring(), settings.audit_witness_dir
            report = full_verification(conn, ring, None, witness)
    if _report(report):
        print(_NOT_VERIFIED, file=sys.stderr)
        return 1
    if report.pending and not args.allow_unchained:
        print(_UNCHAINED.format(report.pending), file=sys.stderr)
        return 1
    print("the audit chain verifies; rebuilding the read model")
    return _rebuild(argparse.Namespace(blue_green=False))


_NOT_VERIFIED = (
    "restored, but the audit chain does NOT verify: the backup was altered or is incomplete."
    " The database is left as restored for investigation; the read model was not rebuilt."
)
_UNCHAINED = (
    "restored, but {} events are not covered by the audit chain. A backup taken while the"
    " projector lagged has a few; a backup whose chain was emptied has all of them, and"
    " rebuilding would sign them. Check against a kept checkpoint or the witness"
    " (gymledger audit verify --checkpoint / --witness), then rebuild with"
    " `gymledger projections rebuild` (or pass --allow-unchained to restore)."
)


def _run(_: argparse.Namespace) -> int:
    from workers.supervisor import supervise

    return supervise()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gymledger",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run").set_defaults(handler=_run)
    sub.add_parser("migrate").set_defaults(handler=_migrate)
    projections = sub.add_parser("projections")
    projections.add_argument("action", choices=["rebuild", "resume", "status"])
    projections.add_argument("--blue-green", action="store_true")
    actions = {"rebuild": _rebuild, "resume": _resume, "status": _status}
    projections.set_defaults(handler=lambda a: actions[a.action](a))
    replay = sub.add_parser("replay")
    replay.add_argument("--verify", action="store_true")
    replay.set_defaults(handler=_replay)
    export = sub.add_parser("export")
    export.add_argument("--gym", type=UUID, required=True)
    export.add_argument("-o", "--output")
    export.set_defaults(handler=_export)
    verify_file = sub.add_parser("verify")
    verify_file.add_argument("file")
    verify_file.add_argument("--public-key", help="PEM file of the public key(s) to trust")
    verify_file.set_defaults(handler=_verify_file)
    backup = sub.add_parser("backup")
    backup.add_argument("directory")
    backup.set_defaults(handler=_backup)
    restore = sub.add_parser("restore")
    restore.add_argument("directory")
    unchained_help = "rebuild even if events of the backup are outside the chain"
    restore.add_argument("--allow-unchained", action="store_true", help=unchained_help)
    restore.set_defaults(handler=_restore)
    audit = sub.add_parser("audit")
    audit.add_argument("action", choices=["verify", "public-key", "sign-heads"])
    audit.add_argument("--gym", type=UUID)
    audit.add_argument("--checkpoint", help="a checkpoint kept earlier (GET /audit/checkpoint)")
    audit.add_argument("--witness", help="witness directory (default: AUDIT_WITNESS_DIR)")
    audit_actions = {"verify": _audit_verify, "public-key": _audit_public_key,
                     "sign-heads": _audit_sign_heads}  # fmt: skip
    audit.set_defaults(handler=lambda a: audit_actions[a.action](a))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(os.environ.get("LOG_LEVEL", "WARNING"))
    try:
        code: int = args.handler(args)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
