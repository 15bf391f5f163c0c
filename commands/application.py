"""The write side's one entry point: `ledger.handle(command, context)`.

Every command is a msgspec Struct in the `Command` union and has one handler; one
exhaustive `match` picks it, so adding a command without a handler fails mypy. What
every command shares (its duration and refusals in the metrics) happens here once,
whichever process issues it: the API, the expiry job or a test.
"""

import time
from typing import assert_never

from commands import customers, gyms, membership_notes, memberships, plans
from commands.context import CommandContext
from commands.customers import ChangeCustomer, ExpireMembership, RegisterCustomer, RemoveCustomer
from commands.gyms import (
    ChangePassword,
    CloseGym,
    GrantAuditorAccess,
    RegisterGym,
    RehashPassword,
    RevokeAuditorAccess,
    UpdateGymProfile,
)
from commands.latest import WriteContention
from commands.membership_notes import ExpireMembershipTerm, QueueMembershipReminder
from commands.memberships import (
    CancelMembership,
    FreezeMembership,
    RenewMembership,
    SellMembership,
    UnfreezeMembership,
)
from commands.plans import ChangePlan, CreatePlan, RetirePlan
from commands.results import CommandResult
from commands.store import EventStore, StreamConflict
from domain.errors import (
    EmailAlreadyRegistered,
    IdempotencyKeyReused,
    MembershipRuleBroken,
    PlanNotOnSale,
    VersionConflict,
)
from infra import metrics

__all__ = ["Command", "GymLedger", "StreamConflict"]

Command = (
    RegisterGym
    | UpdateGymProfile
    | CloseGym
    | GrantAuditorAccess
    | ChangePassword
    | RevokeAuditorAccess
    | RehashPassword
    | RegisterCustomer
    | ChangeCustomer
    | RemoveCustomer
    | ExpireMembership
    | CreatePlan
    | ChangePlan
    | RetirePlan
    | SellMembership
    | FreezeMembership
    | UnfreezeMembership
    | RenewMembership
    | CancelMembership
    | ExpireMembershipTerm
    | QueueMembershipReminder
)

# Why a command was refused, for the conflicts metric (by the error's class).
REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (EmailAlreadyRegistered, "duplicate"),
    (IdempotencyKeyReused, "idempotency_key"),
    (WriteContention, "contention"),  # other writers kept winning for the whole budget
    (VersionConflict, "version"),  # the version the client named is no longer the latest
    (PlanNotOnSale, "plan_retired"),
    (MembershipRuleBroken, "membership_rule"),
)


class GymLedger(EventStore):
    def handle(self, command: Command, ctx: CommandContext) -> CommandResult:
        name = type(command).__name__
        started = time.perf_counter()
        try:
            return self._dispatch(command, ctx)
        except tuple(cls for cls, _ in REFUSALS) as refused:
            reason = next(label for cls, label in REFUSALS if isinstance(refused, cls))
            metrics.COMMAND_CONFLICTS.labels(name, reason).inc()
            raise
        finally:
            metrics.COMMAND_DURATION.labels(name).observe(time.perf_counter() - started)

    def _dispatch(self, command: Command, ctx: CommandContext) -> CommandResult:
        match command:
            case RegisterGym():
                return gyms.register_gym(self, command, ctx)
            case UpdateGymProfile():
                return gyms.update_gym_profile(self, command, ctx)
            case CloseGym():
                return gyms.close_gym(self, command, ctx)
            case GrantAuditorAccess():
                return gyms.grant_auditor_access(self, command, ctx)
            case ChangePassword():
                return gyms.change_password(self, command, ctx)
            case RevokeAuditorAccess():
                return gyms.revoke_auditor_access(self, command, ctx)
            case RehashPassword():
                return gyms.rehash_password(self, command, ctx)
            case RegisterCustomer():
                return customers.register_customer(self, command, ctx)
            case ChangeCustomer():
                return customers.change_customer(self, command, ctx)
            case RemoveCustomer():
                return customers.remove_customer(self, command, ctx)
            case ExpireMembership():
                return customers.expire_membership(self, command, ctx)
            case CreatePlan():
                return plans.create_plan(self, command, ctx)
            case ChangePlan():
                return plans.change_plan(self, command, ctx)
            case RetirePlan():
                return plans.retire_plan(self, command, ctx)
            case SellMembership():
                return memberships.sell_membership(self, command, ctx)
            case FreezeMembership():
                return memberships.freeze_membership(self, command, ctx)
            case UnfreezeMembership():
                return memberships.unfreeze_membership(self, command, ctx)
            case RenewMembership():
                return memberships.renew_membership(self, command, ctx)
            case CancelMembership():
                return memberships.cancel_membership(self, command, ctx)
            case ExpireMembershipTerm():
                return membership_notes.expire_membership_term(self, command, ctx)
            case QueueMembershipReminder():
                return membership_notes.queue_membership_reminder(self, command, ctx)
            case _:
                assert_never(command)
