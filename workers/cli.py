"""`gymledger` command line for operators: run, migrate, rebuild projections."""

import argparse
import sys

import psycopg

from infra.logs import configure_logging
from infra.settings import ConfigError, load_settings


def _rebuild() -> int:
    from projections.read_model import read_model_projector
    from workers.setup import migrate

    settings = load_settings()
    migrate(settings.database_url)
    projector = read_model_projector(settings.audit_key, settings.projector_batch_size)
    with psycopg.connect(settings.database_url) as conn:
        projector.ensure_position_row(conn)
        # One transaction: readers see the old tables until the new ones commit, and a
        # running projector waits on the position row instead of interleaving.
        with conn.transaction():
            projector.reset(conn)
            events = projector.catch_up(conn)
    print(f"rebuilt read model from {events} events")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gymledger")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="API, projector and worker in the foreground (make run)")
    sub.add_parser("migrate", help="create the event store and read tables")
    projections = sub.add_parser("projections", help="read-model maintenance")
    projections.add_argument("action", choices=["rebuild"])
    args = parser.parse_args(argv)
    configure_logging()
    try:
        if args.command == "run":
            from workers.supervisor import supervise

            return supervise()
        if args.command == "migrate":
            from workers.setup import migrate

            print("applied:", ", ".join(migrate(load_settings().database_url)) or "nothing")
            return 0
        return _rebuild()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
