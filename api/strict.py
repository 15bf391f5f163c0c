"""Requests are read exactly as the OpenAPI document types them.

Litestar converts parameters and bodies leniently (msgspec with `strict=False`): it
also takes `null` for an optional query parameter, `1.0` for an integer and `1`, `0`,
`TRUE` or `yes` for a boolean, uses one of several values given for one name, and in
a JSON body reads `0` as false, `"100"` as 100 and a number as a time. The document
promises integers, `true`/`false`, listed values and JSON types. So before any
handler runs (Litestar's `before_request`), this hook refuses (422, naming the value)
what the document does not allow, instead of quietly reading it as something else.
"""

import re
from datetime import date
from typing import Any, Literal, get_args, get_origin

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg
from litestar.typing import FieldDefinition

from api.auth import check_access, current_reader

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")  # as JSON writes one
_BOOLEAN = ("true", "false")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # JSON Schema's "date"; Litestar checks the day
# Names Litestar fills from the connection, never from the query string.
_RESERVED = {"request", "socket", "state", "scope", "headers", "cookies", "query", "body", "data"}

Rule = tuple[str, frozenset[str] | None]  # ("integer" | "boolean" | "date" | "one of", values)
# Keyed by id(handler), with the handler kept beside its entry: it then stays alive, so
# its id can never be reused by another app's handler (tests build several apps).
_rules_of: dict[int, tuple[HTTPRouteHandler, dict[str, Rule]]] = {}
_body_types: dict[int, tuple[HTTPRouteHandler, type[msgspec.Struct] | None]] = {}


def _rule(field: FieldDefinition) -> Rule | None:
    annotation = field.annotation
    kinds = [a for a in get_args(annotation) if a is not type(None)] if field.is_optional else []
    core = kinds[0] if len(kinds) == 1 else annotation
    if core is bool:
        return ("boolean", None)
    if core is int:
        return ("integer", None)
    if core is date:  # Litestar would read `null` as no date at all
        return ("date", None)
    if get_origin(core) is Literal:
        return ("one of", frozenset(str(v) for v in get_args(core)))
    return None


def _query_name(name: str, field: FieldDefinition) -> str | None:
    kwarg = field.kwarg_definition
    if isinstance(kwarg, ParameterKwarg):
        if kwarg.header or kwarg.cookie:
            return None
        return kwarg.query or name
    return None if kwarg is not None or name in _RESERVED else name


def _rules(handler: HTTPRouteHandler) -> dict[str, Rule]:
    """The typed query parameters of a handler, by the name the query string uses."""
    entry = _rules_of.get(id(handler))
    if entry is not None and entry[0] is handler:
        return entry[1]
    path_params = {p for path in handler.paths for p in re.findall(r"{(\w+)", path)}
    found: dict[str, Rule] = {}
    for name, field in handler.parsed_fn_signature.parameters.items():
        query_name = _query_name(name, field)
        rule = _rule(field)
        if query_name and rule and name not in path_params:
            found[query_name] = rule
    _rules_of[id(handler)] = (handler, found)
    return found


def _json_body(handler: HTTPRouteHandler) -> type[msgspec.Struct] | None:
    """The struct a handler's JSON body (`data`) decodes to, if it takes one."""
    entry = _body_types.get(id(handler))
    if entry is None or entry[0] is not handler:
        field = handler.parsed_fn_signature.parameters.get("data")
        kwarg = field.kwarg_definition if field is not None else None
        media = getattr(kwarg, "media_type", None)
        struct = None
        if field is not None and (
            media is None or str(getattr(media, "value", media)) == "application/json"
        ):
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
                struct = annotation
        entry = _body_types[id(handler)] = (handler, struct)
    return entry[1]


def _integral(value: Any) -> Any:
    """JSON Schema's integers include 3.0 (a number without a fraction), which
    Litestar's own reading takes too; strict msgspec would not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _refused(name: str, message: str) -> ValidationException:
    return ValidationException(
        detail="Validation failed", extra=[{"key": name, "source": "query", "message": message}]
    )


async def strict_request(request: Request[Any, Any, Any]) -> None:
    """Litestar's `before_request` hook: runs after routing, before parameters are read.

    The route's access rule is checked and the caller authenticated first (the route's
    own `caller` dependency, whose result api/auth.py keeps for the rest of the request),
    so that a request without a valid token is a 401 (or an auditor's write a 403)
    whatever else is wrong with it, as Litestar itself orders it."""
    handler = request.route_handler
    if not isinstance(handler, HTTPRouteHandler):
        return
    await check_access(request, handler.opt)
    if "caller" in handler.parsed_fn_signature.parameters:
        await current_reader(request)
    _check_query(request, _rules(handler))
    struct = _json_body(handler)
    if struct is not None:
        body = await request.body()  # kept: Litestar reads it from the same cache
        try:
            parsed = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return  # not JSON at all: Litestar's own decoding answers that (400)
        try:
            msgspec.convert(_integral(parsed), type=struct, strict=True)
        except msgspec.ValidationError as refused:  # the message names the field ($.x)
            raise ValidationException(
                detail="Validation failed",
                extra=[{"key": None, "source": "body", "message": str(refused)}],
            ) from None


def _check_query(request: Request[Any, Any, Any], rules: dict[str, Rule]) -> None:
    if not rules:
        return
    query = request.query_params
    for name, (kind, allowed) in rules.items():
        values = query.getall(name, [])
        if not values:
            continue
        if len(values) > 1:
            raise _refused(name, "must be given at most once")
        value = values[0]
        if kind == "integer" and not _INTEGER.fullmatch(value):
            raise _refused(name, "must be an integer")
        if kind == "date" and not _DATE.fullmatch(value):
            raise _refused(name, "must be a date (YYYY-MM-DD)")
        if kind == "boolean" and value not in _BOOLEAN:
            raise _refused(name, "must be true or false")
        if allowed is not None and value not in allowed:
            raise _refused(name, f"must be one of {', '.join(sorted(allowed))}")
