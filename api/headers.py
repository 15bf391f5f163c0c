"""The request headers routes read, each with the one format the server accepts.

The patterns are what the OpenAPI document publishes, and the server refuses exactly
what does not match them (422 naming the header), so a client reading the schema can
never send a header the server turns down, nor one it quietly misreads.
"""

import re
from typing import Annotated

from litestar.params import HeaderParameter

from commands.idempotency import KEY_MAX
from domain.errors import InvalidValue

# `*`, or one version as an entity tag: "3" as the ETag header gives it, W/"3" (a weak
# tag names the same version here), or the bare number. One tag, not a list.
IF_MATCH_PATTERN = r'^(?:\*|(?:W/)?"[0-9]{1,18}"|[0-9]{1,18})$(?!\n)'
_IF_MATCH = re.compile(IF_MATCH_PATTERN)

# Printable ASCII (domain/idempotency.py); HTTP trims blanks at either end, so the
# key the server sees starts and ends with a visible character.
IDEMPOTENCY_KEY_PATTERN = rf"^[\x21-\x7e](?:[\x20-\x7e]{{0,{KEY_MAX - 2}}}[\x21-\x7e])?$(?!\n)"

# Kept as the request's id if it matches; anything else is replaced by a generated id
# (never refused), so the parameter's schema is any string. See api/middleware.py.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$(?!\n)"

IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        description=(
            "Apply the change only if the customer is still at this version: the ETag "
            'of an earlier response ("3"), also W/"3" or 3; `*` matches any version. '
            "Without it the change applies to the latest version."
        ),
        schema_extra={"pattern": IF_MATCH_PATTERN},
    ),
]

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description=(
            f"1 to {KEY_MAX} printable ASCII characters. A retry with the same key and "
            "body gets the first response again and creates nothing; the same key with "
            "another body is refused (422)."
        ),
        schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN},
    ),
]


def expected_version(if_match: str | None) -> int | None:
    """The version an `If-Match` header names; None when absent or `*`."""
    if if_match is None or if_match == "*":
        return None
    if not _IF_MATCH.match(if_match):
        raise InvalidValue(
            "If-Match", 'must be one entity tag such as "3" (the ETag), or *', "header"
        )
    return int(if_match.removeprefix("W/").strip('"'))
