"""The projector that maintains every read model of the API."""

from commands.application import CODEC
from projections.customers import CustomersProjection
from projections.engine import Projector
from projections.gyms import GymsProjection
from projections.mail_outbox import MailOutboxProjection

READ_MODEL = "read_model"


def read_model_projector(batch_size: int = 500) -> Projector:
    return Projector(
        READ_MODEL,
        # Order matters within an event: the outbox reads the gym's name from `gyms`.
        [GymsProjection(), CustomersProjection(), MailOutboxProjection()],
        CODEC,
        batch_size=batch_size,
    )
