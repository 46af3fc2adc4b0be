"""The one JSON parser every consumer uses: a record body becomes a JSON object
or a PermanentMessageError, never anything else, whatever its bytes (I3).

Bounds, all checked before or while parsing so that no input can make the
parser recurse, allocate without limit or hand a handler a value it cannot
store or publish again:

- size: at most the service's `max_message_bytes`;
- encoding: strict UTF-8 (DESIGN §3), a leading byte-order mark tolerated;
- nesting: at most MAX_JSON_DEPTH objects/arrays deep (contract messages are
  at most 3 deep; the stdlib parser would recurse once per level and fail
  with RecursionError past ~1,000);
- numbers: integers fit in 64 bits (what the database stores), floats are
  finite (`1e400` would become infinity), no NaN/Infinity literals;
- objects: no duplicate keys (parsers disagree on which one wins);
- strings: no lone UTF-16 surrogates (`"\\ud800"` decodes, but can never be
  encoded to UTF-8 again, so storing or publishing it would fail).
"""

import json
import math
import re
from typing import Any

from services.common.errors import PermanentMessageError

MAX_JSON_DEPTH = 64
_INT64 = range(-(2**63), 2**63)
# An escape (whatever it escapes), a quote or a bracket: enough to track depth outside strings.
_DEPTH_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused(ValueError):
    pass


def parse_json_object(body: bytes, *, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object, or PermanentMessageError saying why not."""
    if len(body) > max_bytes:
        raise PermanentMessageError(f"body of {len(body)} bytes exceeds the {max_bytes}-byte limit")
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise PermanentMessageError(f"body is not JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    _refuse_deep_nesting(text)
    try:
        value = json.loads(
            text,
            parse_int=_int64,
            parse_float=_finite_float,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except Exception as exc:  # ValueError mostly; whatever else the parser raises is the body's fault too
        raise PermanentMessageError(f"body is not JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise PermanentMessageError(f"body is JSON {type(value).__name__}, not an object")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise PermanentMessageError("body is not JSON: a string holds a lone UTF-16 surrogate")
    return value


def _refuse_deep_nesting(text: str) -> None:
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return  # cannot be deeper, strings included: the common case costs two counts
    depth, in_string = 0, False
    for token in _DEPTH_TOKENS.finditer(text):
        char = token.group()
        if char == '"':
            in_string = not in_string
        elif in_string or len(char) > 1:
            continue
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise PermanentMessageError(f"body is nested more than {MAX_JSON_DEPTH} levels deep")
        else:
            depth -= 1


def _int64(literal: str) -> int:
    value = int(literal)  # ValueError past 4,300 digits
    if value not in _INT64:
        raise _Refused(f"integer {literal[:20]}… does not fit in 64 bits")
    return value


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(f"number {literal[:20]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _Refused("an object has a duplicate key")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """Walked only when the text has a surrogate escape; depth is bounded above."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False
