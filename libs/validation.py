"""Input types every process validates at its edge, so what it cannot store is a 4xx envelope
before any code runs, never a 500 from the database after some of it did.

Text: PostgreSQL refuses NUL in a text column (DataError) and psycopg cannot encode a lone
surrogate (JSON can carry `\\ud800`); SQLite stores both. Neither, nor any other control
character (C0, DEL, C1), belongs in a name, an address or a search term, so all are refused
everywhere, whichever database is behind. Ids: a BIGINT column holds up to 2**63-1 and a JSON
client reads integers exactly up to 2**53; an id outside 1..2**53 names nothing this system
can have issued (a token's `sub`, a path's id)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_ID = 2**53  # the largest integer every JSON client reads exactly; well within BIGINT
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_text(value: str) -> str:
    """`value`, or ValueError when it holds NUL, a control character or a lone surrogate."""
    found = _UNSTORABLE.search(value)
    if found:
        raise ValueError(
            f"must not contain control characters or lone surrogates "
            f"(found U+{ord(found.group()):04X} at position {found.start()})"
        )
    return value


def valid_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


# Metadata for a text field, after its own constraints (nesting an Annotated type inside
# another drops a StringConstraints' min_length): Annotated[str, StringConstraints(...), PRINTABLE]
PRINTABLE = AfterValidator(check_text)
Text = Annotated[str, PRINTABLE]
EntityId = Annotated[int, Field(ge=1, le=MAX_ID)]
