"""Commands on gyms and their handlers (one handler per command)."""

from collections.abc import Callable
from datetime import datetime
from uuid import UUID, uuid4

import msgspec
from eventsourcing.application import AggregateNotFoundError

from commands.context import CommandContext
from commands.idempotency import earlier_result, key_used
from commands.latest import decide_on_latest
from commands.results import CommandResult
from commands.store import EventStore, StreamConflict
from domain import email_claim, gym
from domain.errors import (
    EmailAlreadyRegistered,
    GymIsClosed,
    IdempotencyKeyReused,
    NotFound,
    StreamOfAnotherKind,
)
from domain.events import DomainEvent, Stamp
from domain.gym import NewGym as NewGym  # the payloads, for callers
from domain.gym import PasswordChange as PasswordChange
from domain.gym import ProfileChanges as ProfileChanges
from infra.event_store import Guards

# Signups have no gym yet: their idempotency keys share one scope.
SIGNUP_SCOPE = "signup"


class RegisterGym(msgspec.Struct, frozen=True, kw_only=True):
    signup: gym.NewGym
    idempotency_key: str | None = None
    fingerprint: str = ""  # digest of the request without the password


class UpdateGymProfile(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    changes: gym.ProfileChanges


class CloseGym(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID


class GrantAuditorAccess(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    token_id: UUID
    expires_at: datetime
    token_generation: int  # of the owner's token asking


class ChangePassword(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    change: gym.PasswordChange
    token_generation: int  # of the owner's token asking


class RevokeAuditorAccess(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    token_id: UUID


class RehashPassword(msgspec.Struct, frozen=True, kw_only=True):
    """Issued by a successful login whose stored hash has outdated parameters."""

    gym_id: UUID
    password: str
    verified_hash: str  # the hash the login verified `password` against


def load_gym(app: EventStore, gym_id: UUID, version: int | None = None) -> gym.Gym:
    """The gym as stored: its latest state, or as it was at `version`."""
    try:
        if version is None:
            found = app.latest.get(gym_id, gym.project)
        else:
            found = app.repository.get(gym_id, version=version, projector_func=gym.project)
    except (AggregateNotFoundError, StreamOfAnotherKind):
        found = None
    if found is None:
        raise NotFound("gym")
    return found


def open_gym(app: EventStore, gym_id: UUID) -> gym.Gym:
    """The gym, refusing commands on a closed one (its history stays readable)."""
    return _open(load_gym(app, gym_id))


def open_gym_guarded(app: EventStore, gym_id: UUID) -> tuple[gym.Gym, Guards]:
    """open_gym without reading the gym's stream if this process has read it before,
    and the guard the command's append must carry: the version decided on. On
    PostgreSQL the append is refused if the gym has changed since (closed, moved to
    another timezone), and the command's retry reads it again: a customer command
    then costs no read of its gym (issue 14) and is still decided on its latest
    state. The in-memory store checks no guards, so there it reads, as open_gym does.
    """
    kept = app.latest.cached(gym_id, gym.project) if app.guards_appends else None
    try:
        found, version = kept or app.latest.get_with_version(gym_id, gym.project)
    except StreamOfAnotherKind:
        found, version = None, 0
    if found is None:
        raise NotFound("gym")
    return _open(found), {gym_id: version}


def _open(found: gym.Gym) -> gym.Gym:
    if found.closed:
        raise GymIsClosed(str(found.id))
    return found


def _load_claim(app: EventStore, email: str) -> email_claim.EmailClaim | None:
    try:
        claim: email_claim.EmailClaim = app.repository.get(
            email_claim.claim_id(email), projector_func=email_claim.project
        )
    except AggregateNotFoundError:
        return None
    return claim


def _earlier_signup(app: EventStore, cmd: RegisterGym) -> CommandResult | None:
    found = earlier_result(app, SIGNUP_SCOPE, cmd.idempotency_key, cmd.fingerprint)
    if found is None:
        return None
    # The fingerprint leaves the password out (no password digests in the log);
    # the first request's hash decides whether this is really the same body.
    first_hash = load_gym(app, found, version=1).password_hash
    if not app.passwords.verify(first_hash, cmd.signup.password):
        raise IdempotencyKeyReused("Idempotency-Key was already used with a different request")
    return CommandResult(id=found, version=1, position=0, replayed=True)


def register_gym(app: EventStore, cmd: RegisterGym, ctx: CommandContext) -> CommandResult:
    earlier = _earlier_signup(app, cmd)
    if earlier is not None:
        return earlier
    gym_id = uuid4()
    stamp = ctx.stamp()
    registered = gym.register(gym_id, cmd.signup, hash_password=app.passwords.hash, stamp=stamp)
    claimed = email_claim.claim(_load_claim(app, registered.email), registered.email, gym_id, stamp)
    key = key_used(SIGNUP_SCOPE, cmd.idempotency_key, cmd.fingerprint, gym_id, gym_id, stamp)
    try:
        position = app.append(registered, claimed, key)
    except StreamConflict:
        # Someone else won the race: a retry with the same key, or the same email.
        earlier = _earlier_signup(app, cmd)
        if earlier is not None:
            return earlier
        raise EmailAlreadyRegistered(registered.email) from None
    return CommandResult(id=gym_id, version=1, position=position)


# What a gym command decides from the gym's current state and this attempt's stamp:
# the gym's event (None: nothing to record) and events of other streams that go with it.
Decided = tuple[DomainEvent | None, list[DomainEvent | None]]
GymDecision = Callable[[gym.Gym, Stamp], Decided]


def _on_latest_gym(
    app: EventStore, ctx: CommandContext, gym_id: UUID, decide: GymDecision
) -> CommandResult:
    """Load the gym, decide, append; a lost race is decided again (commands/latest.py)."""

    def attempt() -> CommandResult:
        current = load_gym(app, gym_id)
        event, others = decide(current, ctx.stamp())
        if event is None:
            return CommandResult(id=current.id, version=current.version, position=0)
        position = app.append(event, *others)
        return CommandResult(id=current.id, version=event.originator_version, position=position)

    return decide_on_latest(app.stream_locks, gym_id, ctx, attempt)


def update_gym_profile(
    app: EventStore, cmd: UpdateGymProfile, ctx: CommandContext
) -> CommandResult:
    def decide(current: gym.Gym, stamp: Stamp) -> Decided:
        updated = gym.update_profile(current, cmd.changes, stamp)
        claims: list[DomainEvent | None] = []
        if updated is not None and updated.email is not msgspec.UNSET:
            # Changing email moves the claim: take the new one, free the old one,
            # atomically. A claim taken meanwhile is refused on the next attempt.
            taken = _load_claim(app, updated.email)
            claims.append(email_claim.claim(taken, updated.email, current.id, stamp))
            old_claim = _load_claim(app, current.email)
            if old_claim is not None:
                claims.append(email_claim.release(old_claim, current.id, stamp))
        return updated, claims

    return _on_latest_gym(app, ctx, cmd.gym_id, decide)


def close_gym(app: EventStore, cmd: CloseGym, ctx: CommandContext) -> CommandResult:
    def decide(current: gym.Gym, stamp: Stamp) -> Decided:
        claim = _load_claim(app, current.email)
        released = email_claim.release(claim, current.id, stamp) if claim else None
        return gym.close(current, stamp), [released]

    return _on_latest_gym(app, ctx, cmd.gym_id, decide)


def grant_auditor_access(
    app: EventStore, cmd: GrantAuditorAccess, ctx: CommandContext
) -> CommandResult:
    def decide(current: gym.Gym, stamp: Stamp) -> Decided:
        granted = gym.grant_auditor_access(
            current, cmd.token_id, cmd.expires_at, stamp, token_generation=cmd.token_generation
        )
        return granted, []

    return _on_latest_gym(app, ctx, cmd.gym_id, decide)


def change_password(app: EventStore, cmd: ChangePassword, ctx: CommandContext) -> CommandResult:
    """Checked against the log's current hash, not the read model's: a change that
    loses a race to another change or a rehash is decided again on the hash that won,
    so it can never slip past it (the old password no longer verifies)."""

    def decide(current: gym.Gym, stamp: Stamp) -> Decided:
        changed = gym.change_password(
            current,
            current_password=cmd.change.current_password,
            new_password=cmd.change.new_password,
            verify_password=app.passwords.verify,
            hash_password=app.passwords.hash,
            stamp=stamp,
            token_generation=cmd.token_generation,
        )
        return changed, []

    return _on_latest_gym(app, ctx, cmd.gym_id, decide)


def revoke_auditor_access(
    app: EventStore, cmd: RevokeAuditorAccess, ctx: CommandContext
) -> CommandResult:
    def decide(current: gym.Gym, stamp: Stamp) -> Decided:
        # None when it was revoked already: nothing new to record.
        return gym.revoke_auditor_access(current, cmd.token_id, stamp), []

    return _on_latest_gym(app, ctx, cmd.gym_id, decide)


def rehash_password(app: EventStore, cmd: RehashPassword, ctx: CommandContext) -> CommandResult:
    """Store the password hashed with today's parameters. Nothing happens unless the
    gym still has the very hash the login verified, and that hash is outdated."""

    def decide(current: gym.Gym, stamp: Stamp) -> Decided:
        outdated = app.passwords.needs_rehash(current.password_hash)
        if current.password_hash != cmd.verified_hash or not outdated:
            return None, []
        return gym.rehash_password(current, app.passwords.hash(cmd.password), stamp), []

    return _on_latest_gym(app, ctx, cmd.gym_id, decide)
