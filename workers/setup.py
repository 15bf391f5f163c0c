"""Schema set-up shared by `gymledger migrate`, `make run` and the tests."""

from commands.application import GymLedger
from infra.migrate import apply_migrations
from projections.schema import MIGRATIONS


def migrate(database_url: str) -> list[str]:
    """Create the event store (idempotent) and apply pending read-side migrations."""
    app = GymLedger(database_url, pool_size=1)
    try:
        app.create_tables()
    finally:
        app.close()
    return apply_migrations(database_url, MIGRATIONS)
