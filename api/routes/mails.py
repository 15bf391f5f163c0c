"""The owner's mail log: welcome mails and whether they went out (bodies stay private)."""

from typing import Annotated, Literal

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.auth import CallerGym, OwnerController
from api.errors import responses
from api.openapi import FROM_ZERO
from api.state import Services
from projections.mail_outbox import MailLogEntry, mail_log


class MailsController(OwnerController):
    path = "/mails"
    tags = ["mails"]

    @get("", responses=responses(401, 403, 422, 503))
    async def list(
        self,
        services: Services,
        caller: NamedDependency[CallerGym],
        status: Annotated[Literal["pending", "sent", "failed"] | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, schema_extra=FROM_ZERO, le=1_000_000_000)] = 0,
    ) -> list[MailLogEntry]:
        async with services.read_pool.connection() as conn:
            return await mail_log(conn, caller.id, status, limit, offset)
