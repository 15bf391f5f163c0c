"""The published OpenAPI document (/schema/openapi.json): Litestar's, finished here.

Routes declare what is theirs: statuses (`responses=`, api/errors.py), the headers
they read (api/headers.py) and return (`response_headers=`), and bearer security.
Litestar builds the paths from them; what it cannot get right by itself is done
here, once, when the app is built (`finish`):

- Struct bodies are described by msgspec's own JSON Schema, which is exactly what
  msgspec decodes and encodes: UNSET fields are optional, and the patterns and
  bounds of api/schemas.py are kept (Litestar drops them from unions and drops
  every bound of 0).
- Optional query and header parameters are typed as their value: Litestar writes
  `oneOf: [X, null]`, but a query string or header cannot carry a null.
- Litestar's own "400 Validation Exception" entry goes: here validation errors are
  422 with their own body, and a 400 is declared by the routes that can answer one.
- An event's `data` is described per event type (`EventRecord` is one of them,
  told apart by `type`), from the event structs themselves.
- Headers that do not belong to one route: X-Request-ID on every response (and
  accepted on every request), Retry-After on 429 and 503, WWW-Authenticate on 401.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

import msgspec
from litestar.enums import ParamType
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

from api.cursors import CURSOR_PATTERN
from api.headers import REQUEST_ID_PATTERN
from infra.event_codec import CODEC
from projections.event_log import HIDDEN_FIELDS

BEARER = "BearerToken"
SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    BEARER: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description=(
            "`access_token` from POST /auth/login (owner) or POST /auth/auditor-tokens "
            "(auditor: read-only routes only). Missing, expired or revoked: 401."
        ),
    )
}
SECURED: list[SecurityRequirement] = [{BEARER: []}]
# For `QueryParameter(ge=0, schema_extra=FROM_ZERO)`: Litestar leaves a bound of 0 out
# of the document (it tests the bound's truth), though it enforces it.
FROM_ZERO: dict[str, Any] = {"minimum": 0}
_REF_TEMPLATE = "#/components/schemas/{name}"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass
class RawSchema(Schema):
    """A schema given as JSON Schema text (msgspec's), emitted as it is."""

    raw: dict[str, Any] = field(default_factory=dict)

    def to_schema(self) -> dict[str, Any]:
        return self.raw


def _header(description: str, schema: Schema) -> OpenAPIHeader:
    return OpenAPIHeader(description=description, required=True, schema=schema)


REQUEST_ID_HEADER = _header(
    "The request's id: the X-Request-ID sent, if it matched this pattern, or a "
    "generated one. Stored as the correlation id of the events the request caused.",
    Schema(type=OpenAPIType.STRING, pattern=REQUEST_ID_PATTERN),
)
RETRY_AFTER_HEADER = _header(
    "Seconds to wait before retrying.", Schema(type=OpenAPIType.INTEGER, minimum=1)
)
AUTHENTICATE_HEADER = _header(
    "The scheme to authenticate with.", Schema(type=OpenAPIType.STRING, enum=["Bearer"])
)
# The formats of headers routes declare with `response_headers=` (Litestar's
# ResponseHeader has a description but no schema).
RESPONSE_HEADER_SCHEMAS = {
    "ETag": Schema(type=OpenAPIType.STRING, pattern=r'^"[0-9]+"$(?!\n)'),
    "X-Total-Count": Schema(type=OpenAPIType.INTEGER, minimum=0),
    "X-Next-Cursor": Schema(type=OpenAPIType.STRING, pattern=CURSOR_PATTERN),
}
REQUEST_ID_PARAMETER = Parameter(
    name="X-Request-ID",
    param_in=ParamType.HEADER,
    required=False,
    description=(
        "Your id for this request, kept if it is 1 to 128 of A-Z a-z 0-9 . _ : - "
        "(anything else is replaced by a generated id, never refused)."
    ),
    schema=Schema(type=OpenAPIType.STRING),
)


def _all_structs(cls: type[msgspec.Struct]) -> Iterator[type[msgspec.Struct]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_structs(sub)


def _ref_in_all_of(node: Any) -> Any:
    """msgspec writes a field's own keywords beside its `$ref` (a term's `oneOf`); tools
    reading OpenAPI as 3.0 ignore a `$ref`'s siblings, so the reference goes into
    `allOf` beside them, which means the same in every version."""
    if isinstance(node, list):
        return [_ref_in_all_of(item) for item in node]
    if not isinstance(node, dict):
        return node
    found = {key: _ref_in_all_of(value) for key, value in node.items()}
    if "$ref" in found and len(found) > 1:
        return {"allOf": [{"$ref": found.pop("$ref")}], **found}
    return found


def _struct_components(names: set[str]) -> dict[str, dict[str, Any]]:
    """msgspec's schemas for the structs Litestar made components of (by class name)."""
    by_name = {cls.__name__: cls for cls in _all_structs(msgspec.Struct) if cls.__name__ in names}
    _, components = msgspec.json.schema_components(by_name.values(), ref_template=_REF_TEMPLATE)
    for name, cls in by_name.items():
        # A rule over several fields ("exactly one of"), which msgspec cannot state.
        components[name].update(getattr(cls, "json_schema_extra", {}))
    return {name: _ref_in_all_of(schema) for name, schema in components.items()}


def _event_records(schemas: dict[str, Schema]) -> None:
    """EventRecord as one variant per event type: `type` names it, `data` is the
    event's fields but the envelope and secrets (projections/event_log.py)."""
    record = schemas.get("EventRecord")
    if not isinstance(record, RawSchema):
        return
    _, events = msgspec.json.schema_components(CODEC.event_types, ref_template=_REF_TEMPLATE)
    variants = []
    for cls in sorted(CODEC.event_types, key=lambda c: c.__name__):
        name = cls.__name__
        event = events[name]
        data = {
            "title": f"{name}Data",
            "type": "object",
            "properties": {k: v for k, v in event["properties"].items() if k not in HIDDEN_FIELDS},
            "required": [k for k in event.get("required", []) if k not in HIDDEN_FIELDS],
        }
        schemas[f"{name}Data"] = RawSchema(raw=data)
        properties = {
            **record.raw["properties"],
            "type": {"const": name},
            "data": {"$ref": _REF_TEMPLATE.format(name=f"{name}Data")},
        }
        variants.append({**record.raw, "title": f"EventRecord ({name})", "properties": properties})
    for name, raw in events.items():  # structs the events hold (their metadata aside)
        if name not in {cls.__name__ for cls in CODEC.event_types} and name != "EventMetadata":
            schemas.setdefault(name, RawSchema(raw=raw))
    schemas["EventRecord"] = RawSchema(
        raw={
            "title": "EventRecord",
            "description": record.raw.get("description"),
            "oneOf": variants,
        }
    )


def _value_schema(schema: Schema) -> Schema:
    """`oneOf: [X, null]` with constraints beside it, as X with those constraints."""
    kinds = schema.one_of or []
    values = [s for s in kinds if not (isinstance(s, Schema) and s.type == OpenAPIType.NULL)]
    if len(values) != 1 or len(values) == len(kinds) or not isinstance(values[0], Schema):
        return schema
    beside = {
        f.name: getattr(schema, f.name)
        for f in fields(Schema)
        if f.name != "one_of" and getattr(schema, f.name) is not None
    }
    return replace(values[0], **beside)


def _litestars_validation_400(response: OpenAPIResponse | Reference) -> bool:
    if not isinstance(response, OpenAPIResponse) or not response.content:
        return False
    media = response.content.get("application/json")
    schema = media.schema if isinstance(media, OpenAPIMediaType) else None
    return isinstance(schema, Schema) and schema.description == "Validation Exception"


def _error_body(response: OpenAPIResponse) -> bool:
    media = (response.content or {}).get("application/json")
    schema = media.schema if isinstance(media, OpenAPIMediaType) else None
    return isinstance(schema, Reference) and schema.ref.endswith("/ErrorBody")


def _operations(openapi: OpenAPI) -> Iterator[Operation]:
    for item in (openapi.paths or {}).values():
        for method in _METHODS:
            operation = getattr(item, method, None)
            if isinstance(operation, Operation):
                yield operation


def _integral_bounds(schema: Schema) -> Schema:
    """Litestar writes an integer parameter's bounds as floats (2**62 as 4.6e18), which
    a validator compares as floats; ours are all exact as floats, so back to int."""
    if schema.type != OpenAPIType.INTEGER:
        return schema
    low, high = schema.minimum, schema.maximum
    return replace(
        schema,
        minimum=int(low) if isinstance(low, float) else low,
        maximum=int(high) if isinstance(high, float) else high,
    )


def _parameter(parameter: Parameter | Reference) -> Parameter | Reference:
    if not isinstance(parameter, Parameter) or not isinstance(parameter.schema, Schema):
        return parameter
    schema = parameter.schema if parameter.required else _value_schema(parameter.schema)
    return replace(parameter, schema=_integral_bounds(schema))


def _finish_operation(operation: Operation) -> None:
    parameters = [_parameter(p) for p in operation.parameters or []]
    operation.parameters = [*parameters, REQUEST_ID_PARAMETER]
    responses = operation.responses or {}
    for status in [s for s, r in responses.items() if s == "400" and _litestars_validation_400(r)]:
        del responses[status]
    for status, response in responses.items():
        if not isinstance(response, OpenAPIResponse):
            continue
        headers = response.headers = dict(response.headers or {})
        for name, header in headers.items():
            if isinstance(header, OpenAPIHeader) and header.schema is None:
                header.schema = RESPONSE_HEADER_SCHEMAS[name]
        headers["X-Request-ID"] = REQUEST_ID_HEADER
        if status in ("429", "503") and _error_body(response):  # not /health/ready's 503
            headers["Retry-After"] = RETRY_AFTER_HEADER
        if status == "401":
            headers["WWW-Authenticate"] = AUTHENTICATE_HEADER


def finish(openapi: OpenAPI) -> OpenAPI:
    """Complete the document Litestar built (see the module's docstring)."""
    components = openapi.components
    schemas = components.schemas = dict(components.schemas or {})
    # A request body published under another name than its class's (Body(
    # schema_component_key=...)) still carries the class's name as its title.
    classes = {
        name: schema.title if isinstance(schema, Schema) and schema.title else name
        for name, schema in schemas.items()
    }
    by_class = _struct_components(set(classes.values()))
    for name, cls_name in classes.items():
        if cls_name in by_class:
            schemas[name] = RawSchema(raw=by_class[cls_name])
    _event_records(schemas)
    components.security_schemes = {**(components.security_schemes or {}), **SECURITY_SCHEMES}
    for operation in _operations(openapi):
        _finish_operation(operation)
    return openapi
