"""Checks applied to every key and value before anything is buffered or written.

They run in the caller's thread, so a bad call fails at the line that made it even when
the write itself happens later in the background writer.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from loopml.errors import InvalidInputError
from loopml.store.models import (
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
)

# MLflow's rule: alphanumerics, underscores, dashes, periods, spaces, colons and slashes.
_KEY = re.compile(r"^[\w\-. :/]+$")

# Keys that passed check_key. A training loop logs the same few names thousands of times
# (and a batch of 10,000 metrics may hold 100 names), so the checks run once per name.
_ACCEPTED_KEYS: set[str] = set()
_ACCEPTED_KEYS_LIMIT = 100_000


def check_key(kind: str, key: Any) -> str:
    if key.__class__ is str and key in _ACCEPTED_KEYS:
        return key
    if not isinstance(key, str) or not key:
        raise InvalidInputError(
            f"{kind} key {key!r} is not a non-empty string",
            hint=f"name the {kind} with a string such as 'rmse' or 'train/loss'",
        )
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"{kind} key {key[:40]!r}... is {len(key)} characters long; "
            f"the limit is {MAX_KEY_LENGTH}",
            hint="use a shorter key",
        )
    if not _KEY.match(key) or ".." in key.split("/") or key.startswith("/"):
        raise InvalidInputError(
            f"{kind} key {key!r} contains characters that are not allowed",
            hint="use letters, digits, '_', '-', '.', ' ', ':' and '/' (no '..' parts)",
        )
    if len(_ACCEPTED_KEYS) < _ACCEPTED_KEYS_LIMIT:
        _ACCEPTED_KEYS.add(key)
    return key


def check_metric_value(key: str, value: Any) -> float:
    """A metric value as a float; NaN and ±inf are valid, non-numbers are not."""
    # Exact-type fast paths: the abstract-class checks below cost more than the rest of a
    # buffered log_metric call.
    if value.__class__ is float:
        return value
    if value.__class__ is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # numpy scalars register as numbers.Real; strings and None do not.
        if hasattr(value, "dtype") and getattr(value, "shape", None) == ():
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
        raise InvalidInputError(
            f"metric {key!r} has value {value!r} of type {type(value).__name__}; "
            "metrics must be numbers",
            hint="log numbers with log_metric, text with set_tag or log_param",
        )
    return float(value)


def check_step(step: Any) -> int:
    if step is None:
        return 0
    if step.__class__ is int:
        return step
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInputError(
            f"metric step {step!r} is not an integer",
            hint="pass step as an int, e.g. the epoch number",
        )
    return int(step)


def param_text(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidInputError(
            f"param {key!r} has a value of {len(text)} characters; "
            f"the limit is {MAX_PARAM_VALUE_LENGTH}",
            hint="log long values as an artifact with log_dict or log_text",
        )
    return text


def tag_text(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidInputError(
            f"tag {key!r} has a value of {len(text)} characters; "
            f"the limit is {MAX_TAG_VALUE_LENGTH}",
            hint="log long values as an artifact with log_dict or log_text",
        )
    return text


def check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(
            f"{kind} name {name!r} is empty", hint=f"give the {kind} a non-empty name"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{kind} name {name[:40]!r}... is longer than {MAX_NAME_LENGTH} characters",
            hint="use a shorter name",
        )
    return name


def encode_metric(value: float) -> float | str:
    """JSON form of a metric value inside a run summary (JSON has no NaN or infinity)."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def decode_metric(value: float | str) -> float:
    return float(value)
