"""The projector that maintains every read model of the API, the outbox and the audit chain."""

from infra.event_codec import CODEC
from infra.signing import KeyRing
from projections.audit_chain import AuditChainProjection
from projections.check_ins import CheckInsProjection
from projections.customers import CustomersProjection
from projections.engine import Projector
from projections.event_log import EventIndexProjection
from projections.gyms import GymsProjection
from projections.mail_outbox import MailOutboxProjection
from projections.memberships import MembershipsProjection
from projections.plans import PlansProjection
from projections.witness import Witness

READ_MODEL = "read_model"


def read_model_projector(ring: KeyRing, batch_size: int = 500, witness_dir: str = "") -> Projector:
    return Projector(
        READ_MODEL,
        [
            # Order matters within an event: the outbox reads the gym's name from `gyms`.
            GymsProjection(),
            CustomersProjection(),
            PlansProjection(),
            MembershipsProjection(),
            CheckInsProjection(),
            MailOutboxProjection(),
            EventIndexProjection(),
            AuditChainProjection(ring, Witness(witness_dir) if witness_dir else None),
        ],
        CODEC,
        batch_size=batch_size,
    )
