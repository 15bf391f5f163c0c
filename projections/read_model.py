"""The projector that maintains every read model of the API."""

from commands.application import CODEC
from projections.engine import Projector
from projections.gyms import GymsProjection
from projections.mail_outbox import MailOutboxProjection

READ_MODEL = "read_model"


def read_model_projector(batch_size: int = 500) -> Projector:
    return Projector(
        READ_MODEL, [GymsProjection(), MailOutboxProjection()], CODEC, batch_size=batch_size
    )
