"""Domain errors: what the business rules refuse, independent of transport.

The API maps each class to an HTTP status in one table (api/errors.py).
"""


class DomainError(Exception):
    """Base class for every rule the domain enforces."""


class InvalidValue(DomainError):
    """A field breaks an invariant; `field` names it so clients can show it, and
    `location` says where the request carried it ("body", "header", "query")."""

    def __init__(self, field: str, message: str, location: str = "body") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.location = location


class EmailAlreadyRegistered(DomainError):
    """Another open gym already owns this email."""


class IncorrectPassword(DomainError):
    """The current password given to confirm a credential change is wrong."""


class StaleCredentials(DomainError):
    """The caller's token is of an earlier token generation than the log's: the
    password changed after it was issued (the read model had not shown it yet)."""


class GymIsClosed(DomainError):
    """Commands on a closed gym are refused; its history stays readable."""


class NotFound(DomainError):
    """The aggregate does not exist (or is not visible to the caller)."""

    def __init__(self, what: str, detail: str | None = None) -> None:
        super().__init__(detail or f"{what.capitalize()} not found")


class VersionConflict(DomainError):
    """The caller expected another version than the one stored."""

    def __init__(self, expected: int, actual: int | None = None) -> None:
        found = "another writer appended first" if actual is None else f"found {actual}"
        super().__init__(f"expected version {expected}, {found}")
        self.expected = expected
        self.actual = actual


class StreamOfAnotherKind(DomainError):
    """A stream was read as an aggregate it is not (a customer's id used as a gym's):
    for the caller, that aggregate does not exist."""


class InvalidLogin(DomainError):
    """No open gym has this email, or the password is wrong: one answer for both, so
    a login does not reveal which emails are registered."""

    def __init__(self) -> None:
        super().__init__("Incorrect email or password")


class InvalidQuery(DomainError):
    """Query parameters that are each valid but contradict each other."""


class IdempotencyKeyReused(DomainError):
    """The Idempotency-Key was used before with another request body."""


class PlanNotOnSale(DomainError):
    """A retired plan cannot be sold; the memberships sold before go on."""


class MembershipRuleBroken(DomainError):
    """A membership command the membership's state refuses: a freeze over the plan's
    limit or overlapping another, cancelling twice, unfreezing what is not frozen."""


class CardCodeTaken(DomainError):
    """Another customer of the gym already carries this card code."""
