"""One table from errors to HTTP responses; every error body has `detail` and `status_code`.

Validation errors keep the shape clients of the earlier FastAPI service parse:
`detail` is a list of `{loc, msg, type}`. Unexpected errors get an `error_id`
that is logged with the stack trace; the response never carries internals.
"""

import logging
import re
import uuid
from http import HTTPStatus
from typing import Any

import eventsourcing.persistence
import msgspec
import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap
from psycopg_pool import PoolTimeout

from commands.latest import WriteContention
from domain.errors import (
    CardCodeTaken,
    DomainError,
    EmailAlreadyRegistered,
    GymIsClosed,
    IdempotencyKeyReused,
    IncorrectPassword,
    InvalidLogin,
    InvalidQuery,
    InvalidValue,
    MembershipRuleBroken,
    NotFound,
    PlanNotOnSale,
    StaleCredentials,
    VersionConflict,
)
from infra.event_store import DatabaseUnavailable

log = logging.getLogger("gymledger.api")


class ErrorBody(msgspec.Struct):
    """Every error but a validation error: what went wrong, and the status again."""

    detail: str
    status_code: int


class FieldError(msgspec.Struct):
    """One refused value: where it was (["body", "email"], ["query", "limit"],
    ["header", "If-Match"]), why, and FastAPI's error type."""

    loc: list[str]
    msg: str
    type: str


class ValidationErrorBody(msgspec.Struct):
    """422: the shape clients of the earlier FastAPI service parse."""

    detail: list[FieldError]
    status_code: int


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The error responses a route declares in its OpenAPI entry, with their bodies.
    Headers that come with some of them (Retry-After, WWW-Authenticate) and the
    X-Request-ID every response carries are added in api/openapi.py."""
    return {
        status: ResponseSpec(
            data_container=ValidationErrorBody if status == 422 else ErrorBody,
            generate_examples=False,
            description=HTTPStatus(status).phrase,
        )
        for status in statuses
    }


def field_error(location: str, field: str, message: str) -> Response[Any]:
    """A 422 naming one field, as every validation error does."""
    return error_body(422, [{"loc": [location, field], "msg": message, "type": "value_error"}])


# Domain error -> (status, detail). Order matters only for subclasses listed first.
DOMAIN_STATUS: tuple[tuple[type[DomainError], int, str | None], ...] = (
    (EmailAlreadyRegistered, 400, "Email already registered"),
    (GymIsClosed, 401, "Could not validate credentials"),
    (StaleCredentials, 401, "Could not validate credentials"),
    (IncorrectPassword, 400, "Incorrect password"),
    (InvalidLogin, 400, None),
    (InvalidQuery, 400, None),
    (NotFound, 404, None),
    (VersionConflict, 412, "The resource was changed by someone else; reload and retry"),
    (PlanNotOnSale, 409, None),
    (MembershipRuleBroken, 409, None),
    (CardCodeTaken, 409, "Card code already in use by another customer"),
)


def error_body(status: int, detail: Any, **extra: Any) -> Response[dict[str, Any]]:
    return Response(
        {"detail": detail, "status_code": status, **extra},
        status_code=status,
        media_type=MediaType.JSON,
    )


_AT_PATH = re.compile(r"\$\.([\w.]+)`?$")
_MISSING = re.compile(r"missing required field `(\w+)`")


def _loc(source: str | None, key: str | None, message: str) -> list[str]:
    """Name the offending field the way FastAPI did: ["body", "email"]."""
    found = _AT_PATH.search(message) or _MISSING.search(message)
    field = found.group(1) if found else (key if key not in (None, "data") else None)
    return [source or "body", *(field.split(".") if field else [])]


def validation_failed(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    items = exc.extra if isinstance(exc.extra, list) else []
    detail = [
        {
            "loc": _loc(item.get("source"), item.get("key"), str(item.get("message", ""))),
            "msg": str(item.get("message", exc.detail)),
            "type": "value_error",
        }
        for item in items
        if isinstance(item, dict)
    ] or [{"loc": ["body"], "msg": exc.detail, "type": "value_error"}]
    return error_body(422, detail)


def invalid_value(_: Request[Any, Any, Any], exc: InvalidValue) -> Response[Any]:
    return field_error(exc.location, exc.field, exc.message)


def domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    if isinstance(exc, IdempotencyKeyReused):  # a 422 like any other: it names the header
        return field_error("header", "Idempotency-Key", str(exc))
    for cls, status, detail in DOMAIN_STATUS:
        if isinstance(exc, cls):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            response = error_body(status, detail or str(exc))
            if headers:
                response.headers.update(headers)
            return response
    return unexpected_error(_, exc)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    response = error_body(exc.status_code, exc.detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """PostgreSQL down or restarting: fail fast and tell clients when to retry."""
    log.warning("database unavailable", extra={"error": type(exc).__name__})
    response = error_body(503, "Service temporarily unavailable; retry shortly")
    response.headers["Retry-After"] = "5"
    return response


def contended(_: Request[Any, Any, Any], exc: WriteContention) -> Response[Any]:
    """Writers elsewhere kept winning this stream for the whole COMMAND_TIMEOUT: nothing
    was written, and a retry soon is applied to the latest version like any other."""
    log.warning("command gave up under contention", extra={"attempts": exc.attempts})
    response = error_body(503, "Too many concurrent changes to this resource; retry shortly")
    response.headers["Retry-After"] = "1"
    return response


def too_deep(_: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """Only JSON decoding recurses on input: a body nested thousands deep."""
    log.warning("request body nested too deeply")
    return error_body(400, "Request body is nested too deeply")


def not_utf8(_: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    return error_body(400, "Request body is not valid UTF-8")


def unexpected_error(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    error_id = uuid.uuid4().hex
    log.error("unhandled error", exc_info=exc, extra={"error_id": error_id})
    return error_body(HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error", error_id=error_id)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationException: validation_failed,
    InvalidValue: invalid_value,
    DomainError: domain_error,
    HTTPException: http_error,
    psycopg.OperationalError: unavailable,
    PoolTimeout: unavailable,
    # The write side's recorder wraps driver errors in its own classes.
    eventsourcing.persistence.OperationalError: unavailable,
    eventsourcing.persistence.InterfaceError: unavailable,
    DatabaseUnavailable: unavailable,
    WriteContention: contended,
    RecursionError: too_deep,
    UnicodeDecodeError: not_utf8,
    Exception: unexpected_error,
}
