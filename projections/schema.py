"""Every read-side table, as ordered migrations (applied by `gymledger migrate`)."""

from infra.migrate import Migration
from projections import audit_chain, customers, engine, event_log, gyms, mail_outbox

MIGRATIONS = (
    Migration("0001_projector_positions", engine.MIGRATION_SQL),
    Migration("0002_gyms", gyms.MIGRATION_SQL),
    Migration("0003_mail_outbox", mail_outbox.MIGRATION_SQL),
    Migration("0004_gym_timezone", gyms.TIMEZONE_MIGRATION_SQL),
    Migration("0005_customers", customers.MIGRATION_SQL),
    Migration("0006_event_index", event_log.MIGRATION_SQL),
    Migration("0007_audit_chain", audit_chain.MIGRATION_SQL),
    Migration("0008_mail_relay_indexes", mail_outbox.RELAY_INDEXES_SQL),
    Migration("0009_projection_faults", engine.FAULTS_MIGRATION_SQL),
    Migration("0010_mail_log_index", mail_outbox.MAIL_LOG_INDEX_SQL),
    Migration("0011_credentials", gyms.CREDENTIALS_MIGRATION_SQL),
    Migration("0012_ed25519_checkpoints", audit_chain.SIGNATURES_MIGRATION_SQL),
    Migration("0013_mail_outbox_counts", mail_outbox.COUNTS_SQL),
)
