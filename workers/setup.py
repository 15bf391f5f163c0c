"""Schema set-up shared by `gymledger migrate`, `make run` and the tests."""

from commands.application import GymLedger
from infra import event_store
from infra.migrate import Migration, apply_migrations
from projections.schema import MIGRATIONS

# The write side's own additions to eventsourcing's tables, and every migration in the
# order released (databases in the field have applied a prefix of it): a new one goes at
# the end, whichever side owns it.
WRITE_SIDE = "write_side"
ALL_MIGRATIONS = (
    Migration("event_store_0001_single_trip_append", WRITE_SIDE, event_store.MIGRATION_SQL),
    *MIGRATIONS,
    Migration("event_store_0002_guarded_append", WRITE_SIDE, event_store.GUARDED_MIGRATION_SQL),
    Migration("event_store_0003_json_append", WRITE_SIDE, event_store.JSON_MIGRATION_SQL),
)


def migrate(database_url: str) -> list[str]:
    """Create the event store (idempotent) and apply pending migrations."""
    app = GymLedger(database_url, pool_size=1)
    try:
        app.create_tables()
    finally:
        app.close()
    return apply_migrations(database_url, ALL_MIGRATIONS)
