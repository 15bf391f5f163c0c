"""The projector that maintains every read model of the API, the outbox and the audit chain."""

from infra.event_codec import CODEC
from projections.audit_chain import AuditChainProjection
from projections.customers import CustomersProjection
from projections.engine import Projector
from projections.event_log import EventIndexProjection
from projections.gyms import GymsProjection
from projections.mail_outbox import MailOutboxProjection

READ_MODEL = "read_model"


def read_model_projector(audit_key: str, batch_size: int = 500) -> Projector:
    return Projector(
        READ_MODEL,
        [
            # Order matters within an event: the outbox reads the gym's name from `gyms`.
            GymsProjection(),
            CustomersProjection(),
            MailOutboxProjection(),
            EventIndexProjection(),
            AuditChainProjection(audit_key.encode()),
        ],
        CODEC,
        batch_size=batch_size,
    )
