"""The migration list: ledger names that never move, and an owner for every migration."""

from projections import engine
from projections.audit_chain import AuditChainProjection
from projections.mail_outbox import MailOutboxProjection
from projections.rebuild import rebuilt_projections
from projections.schema import MIGRATIONS
from workers.setup import ALL_MIGRATIONS, WRITE_SIDE

# What databases in the field have in schema_migrations: a renamed or reordered entry
# would run again on them (or never), so these stay exactly as released.
RELEASED = (
    "event_store_0001_single_trip_append",
    "0001_projector_positions",
    "0002_gyms",
    "0003_mail_outbox",
    "0004_gym_timezone",
    "0005_customers",
    "0006_event_index",
    "0007_audit_chain",
    "0008_mail_relay_indexes",
    "0009_projection_faults",
    "0010_mail_log_index",
    "0011_credentials",
    "0012_ed25519_checkpoints",
    "0013_mail_outbox_counts",
    "0014_plans",
    "0015_memberships",
)


def test_released_migrations_keep_their_names_and_order() -> None:
    names = [m.name for m in ALL_MIGRATIONS]
    assert names[: len(RELEASED)] == list(RELEASED)
    assert len(set(names)) == len(names)


def test_every_migration_names_an_owner_that_exists() -> None:
    owners = {
        WRITE_SIDE,
        engine.OWNER,
        MailOutboxProjection.name,
        AuditChainProjection.name,
        *(p.name for p in rebuilt_projections()),
    }
    assert {m.owner for m in ALL_MIGRATIONS} <= owners
    # Every rebuilt projection has migrations of its own to build a scratch copy from.
    assert {p.name for p in rebuilt_projections()} <= {m.owner for m in MIGRATIONS}


def test_every_template_renders_into_the_schema_it_is_given() -> None:
    for migration in ALL_MIGRATIONS:
        assert '"scratch_x".' in migration.render("scratch_x").as_string(), migration.name
