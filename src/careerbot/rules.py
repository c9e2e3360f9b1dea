"""What a value broke, in plain words, for the API's errors (errors.py) and the CLI's
settings alike: this module loads no web framework, so a command that serves nothing
does not either."""

import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

# The longest question answered, over HTTP and on the command line alike.
MAX_QUESTION_CHARS = 1000
# Characters a question may not hold (C0 and C1 controls but tab and line breaks); the
# pattern says "at least one visible character, no controls" for the OpenAPI schema.
CONTROLS = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
# Characters that show nothing: zero-width spaces and joiners, the word joiner, a byte
# order mark. They are trimmed with the spaces, and a question of nothing else is empty.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
INVISIBLE_ESCAPED = "".join(f"\\u{ord(c):04x}" for c in INVISIBLE)  # as the pattern writes them
QUESTION_PATTERN = f"^[^{CONTROLS}]*[^\\s{CONTROLS}{INVISIBLE_ESCAPED}][^{CONTROLS}]*$"
# What a question is trimmed of: every space (the last is U+3000) and the invisible.
TRIMMED = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + INVISIBLE

# Limits, worded with the bound that pydantic puts in the error's context.
BOUNDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "string_too_long": lambda c: f"must be at most {c['max_length']} characters",
    "string_too_short": lambda c: (
        "must not be empty"
        if c["min_length"] == 1
        else f"must be at least {c['min_length']} characters"
    ),
    "less_than_equal": lambda c: f"must be at most {c['le']}",
    "greater_than_equal": lambda c: f"must be at least {c['ge']}",
    "greater_than": lambda c: f"must be more than {c['gt']}",
    "less_than": lambda c: f"must be less than {c['lt']}",
}


def rule(error: Mapping[str, Any], words: Mapping[str, str]) -> str:
    """A pydantic error's rule in plain words: a validator's own message, a bound with its
    limit, else `words` for its kind, else pydantic's."""
    kind, context = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return str(context["error"])
    if kind in BOUNDS:
        return BOUNDS[kind](context)
    return words.get(kind, str(error["msg"]))


def valid_unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains characters that are not valid Unicode text") from None
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in value):
        raise ValueError("must not contain control characters such as NUL")
    return value


class EmptyQuestion(ValueError):
    """A question with nothing in it but spaces (and characters that show nothing)."""


def question_text(value: str) -> str:
    """A question as it is answered: valid text, trimmed of spaces and of characters that
    show nothing, not empty, not too long."""
    value = valid_unicode(value).strip(TRIMMED)
    if not value:
        raise EmptyQuestion("must not be empty")
    if len(value) > MAX_QUESTION_CHARS:
        raise ValueError(f"must be at most {MAX_QUESTION_CHARS} characters, not {len(value)}")
    return value
