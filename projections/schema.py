"""Every read-side table, as ordered migrations (applied by `gymledger migrate`), each
naming the projection that owns the tables it creates or changes: a rebuild applies
exactly its projections' migrations, in a scratch schema (projections/rebuild.py).

Names are the ledger's keys (infra/migrate.py): never rename or reorder a released one.
"""

from collections.abc import Collection

from infra.migrate import Migration
from projections import (
    audit_chain,
    check_ins,
    customers,
    engine,
    event_log,
    gyms,
    mail_outbox,
    memberships,
    plans,
)
from projections.audit_chain import AuditChainProjection
from projections.check_ins import CheckInsProjection
from projections.customers import CustomersProjection
from projections.event_log import EventIndexProjection
from projections.gyms import GymsProjection
from projections.mail_outbox import MailOutboxProjection
from projections.memberships import MembershipsProjection
from projections.plans import PlansProjection

GYMS = GymsProjection.name
CUSTOMERS = CustomersProjection.name
EVENT_INDEX = EventIndexProjection.name
OUTBOX = MailOutboxProjection.name
AUDIT_CHAIN = AuditChainProjection.name
PLANS = PlansProjection.name
MEMBERSHIPS = MembershipsProjection.name
CHECK_INS = CheckInsProjection.name

MIGRATIONS = (
    Migration("0001_projector_positions", engine.OWNER, engine.MIGRATION_SQL),
    Migration("0002_gyms", GYMS, gyms.MIGRATION_SQL),
    Migration("0003_mail_outbox", OUTBOX, mail_outbox.MIGRATION_SQL),
    Migration("0004_gym_timezone", GYMS, gyms.TIMEZONE_MIGRATION_SQL),
    Migration("0005_customers", CUSTOMERS, customers.MIGRATION_SQL),
    Migration("0006_event_index", EVENT_INDEX, event_log.MIGRATION_SQL),
    Migration("0007_audit_chain", AUDIT_CHAIN, audit_chain.MIGRATION_SQL),
    Migration("0008_mail_relay_indexes", OUTBOX, mail_outbox.RELAY_INDEXES_SQL),
    Migration("0009_projection_faults", engine.OWNER, engine.FAULTS_MIGRATION_SQL),
    Migration("0010_mail_log_index", OUTBOX, mail_outbox.MAIL_LOG_INDEX_SQL),
    Migration(
        "0011_credentials",
        GYMS,
        gyms.CREDENTIALS_MIGRATION_SQL,
        backfill=gyms.CREDENTIALS_BACKFILL_SQL,
    ),
    Migration("0012_ed25519_checkpoints", AUDIT_CHAIN, audit_chain.SIGNATURES_MIGRATION_SQL),
    Migration(
        "0013_mail_outbox_counts",
        OUTBOX,
        mail_outbox.COUNTS_SQL,
        backfill=mail_outbox.COUNTS_BACKFILL_SQL,
    ),
    Migration("0014_plans", PLANS, plans.MIGRATION_SQL),
    Migration("0015_memberships", MEMBERSHIPS, memberships.MIGRATION_SQL),
    Migration("0016_gym_reminder_days", GYMS, gyms.REMINDER_DAYS_MIGRATION_SQL),
    Migration("0017_event_index_time", EVENT_INDEX, event_log.RECORDED_AT_INDEX_SQL),
    Migration("0018_customer_card_codes", CUSTOMERS, customers.CARD_CODE_MIGRATION_SQL),
    Migration("0019_check_ins", CHECK_INS, check_ins.MIGRATION_SQL),
    Migration(
        "0020_customer_holds_memberships", CUSTOMERS, customers.HOLDS_MEMBERSHIPS_MIGRATION_SQL
    ),
    Migration("0021_customer_last_check_in", CUSTOMERS, customers.LAST_CHECK_IN_MIGRATION_SQL),
    Migration("0022_membership_work_lists", MEMBERSHIPS, memberships.WORK_LIST_INDEXES_SQL),
)


def migrations_of(owners: Collection[str]) -> list[Migration]:
    """The migrations of these owners, in order."""
    return [m for m in MIGRATIONS if m.owner in owners]
