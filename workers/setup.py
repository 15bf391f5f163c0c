"""Schema set-up shared by `gymledger migrate`, `make run` and the tests."""

from commands.application import GymLedger
from infra import event_store
from infra.migrate import Migration, apply_migrations
from projections.schema import MIGRATIONS

# The write side's own additions to eventsourcing's tables, applied before the read side's.
WRITE_SIDE = "write_side"
EVENT_STORE_MIGRATIONS = (
    Migration("event_store_0001_single_trip_append", WRITE_SIDE, event_store.MIGRATION_SQL),
)


def migrate(database_url: str) -> list[str]:
    """Create the event store (idempotent) and apply pending migrations."""
    app = GymLedger(database_url, pool_size=1)
    try:
        app.create_tables()
    finally:
        app.close()
    return apply_migrations(database_url, (*EVENT_STORE_MIGRATIONS, *MIGRATIONS))
