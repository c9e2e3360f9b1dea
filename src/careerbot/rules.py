"""What a value broke, in plain words, for the API's errors (errors.py) and the CLI's
settings alike: this module loads no web framework, so a command that serves nothing
does not either."""

from collections.abc import Callable, Mapping
from typing import Any

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
