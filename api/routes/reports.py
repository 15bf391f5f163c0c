"""Reports of the caller's gym, read from the event log (projections/reports.py):
owners and auditors alike may read them."""

from datetime import date, timedelta
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.auth import CALLER, CallerGym
from api.errors import responses
from api.moments import AS_OF, as_of_in_utc
from api.openapi import SECURED
from api.state import Services
from domain.errors import InvalidQuery
from projections.reports import (
    MembershipReport,
    MovementsReport,
    membership_report,
    movements_report,
)

Reader = NamedDependency[CallerGym]
# Two years and a day: a year against the year before fits; longer windows are
# several reports.
MOVEMENTS_MAX_DAYS = 731


class ReportsController(Controller):
    path = "/reports"
    tags = ["reports"]
    dependencies = {"caller": CALLER}
    security = SECURED

    @get("/memberships", responses=responses(401, 422, 503))
    async def memberships(
        self,
        services: Services,
        caller: Reader,
        on: Annotated[
            date | None,
            QueryParameter(description="The day to count for (default: the gym's today)."),
        ] = None,
        as_of: Annotated[str | None, AS_OF] = None,
    ) -> MembershipReport:
        """The gym's memberships by their status on `on`, counted from the events; with
        `as_of`, only what had been recorded by then (the report as it printed then)."""
        moment = None if as_of is None else as_of_in_utc(as_of)
        day = on or caller.today(moment or services.clock.now())  # then, with as_of
        async with services.read_pool.connection() as conn:
            return await membership_report(conn, caller.id, day, moment)

    @get("/movements", responses=responses(400, 401, 422, 503))
    async def movements(
        self,
        services: Services,
        caller: Reader,
        first: Annotated[date, QueryParameter(name="from", description="First day (gym-local).")],
        last: Annotated[date, QueryParameter(name="to", description="Last day, included.")],
    ) -> MovementsReport:
        """Memberships sold, renewed, frozen, cancelled and expired, and check-ins allowed
        and denied, recorded from the start of `from` to the end of `to` in the gym's
        time zone."""
        # Each is a valid date; together they may contradict: 400, as min_age > max_age.
        if last < first:
            raise InvalidQuery("to must not be before from")
        if last - first >= timedelta(days=MOVEMENTS_MAX_DAYS):
            raise InvalidQuery(f"to must be within {MOVEMENTS_MAX_DAYS} days of from")
        async with services.read_pool.connection() as conn:
            return await movements_report(conn, caller.id, first, last, caller.timezone)
