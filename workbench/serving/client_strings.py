"""What strings a client may send the inference server.

Request ids travel far: into the `x-request-id` response header, the Parquet prediction log,
label joins and log lines. So a request id is 1 to 128 printable characters: no control
character (C0, DEL, C1: CR, LF and NUL included), no line or paragraph separator, no lone
surrogate. The OpenAPI spec states the same rule as a `pattern` (`REQUEST_ID_PATTERN`).

Any other string in a body (a field name, a categorical value) may hold anything JSON can
spell except a lone surrogate (`"\\ud800"`): that is not Unicode text, cannot be written as
UTF-8 (so not to Parquet either), and is refused with a 422 naming where it is. The check is
cheap on the hot path: a JSON body can only carry a surrogate as a `\\uD8..`-`\\uDF..` escape
(raw surrogate bytes are not valid UTF-8 and fail decoding), so the decoded value is walked
only when the raw bytes hold such an escape (`may_hold_surrogates`).
"""

from __future__ import annotations

import re
from typing import Any

#: A request id's length bounds, in characters.
REQUEST_ID_MIN = 1
REQUEST_ID_MAX = 128
#: The characters a request id may not hold (the same set as REQUEST_ID_PATTERN, plus lone
#: surrogates, which a JSON Schema string cannot hold anyway).
_BAD_ID_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: JSON Schema (ECMA-262) spelling of the rule, for /openapi.json.
REQUEST_ID_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]+$"
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

Loc = tuple[str | int, ...]


def request_id_problem(value: Any) -> str | None:
    """None when `value` is a valid request id, else what is wrong with it (one line)."""
    if type(value) is str and REQUEST_ID_MIN <= len(value) <= REQUEST_ID_MAX:
        bad = _BAD_ID_CHAR.search(value)
        if bad is None:
            return None
        return (
            f"expected printable characters only, got {describe_char(bad.group())} "
            f"at position {bad.start()}"
        )
    if type(value) is str:
        got = f"a longer string ({len(value)} characters)" if value else "''"
    else:
        from workbench.serving.signature import _show

        got = _show(value)
    return (
        f"expected a non-empty string of at most {REQUEST_ID_MAX} printable characters, got {got}"
    )


def describe_char(char: str) -> str:
    """A character as one can read it in a one-line error: U+000A (a control character)."""
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        kind = "a lone surrogate"
    elif code in (0x2028, 0x2029):
        kind = "a line separator"
    else:
        kind = "a control character"
    return f"U+{code:04X} ({kind})"


def may_hold_surrogates(body: bytes) -> bool:
    """False when the raw JSON body cannot hold a lone surrogate (the common, fast case)."""
    return _SURROGATE_ESCAPE.search(body) is not None


def find_surrogate(data: Any) -> tuple[Loc, str] | None:
    """The location of the first string (a key or a value) in decoded JSON `data` holding a
    lone surrogate, and the message for it; None when there is none. Iterative: a deeply
    nested body cannot exhaust the stack."""
    stack: list[tuple[Loc, Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if type(value) is str:
            if _SURROGATE.search(value):
                return loc, _message(value, "string")
        elif type(value) is dict:
            for key in value:
                if _SURROGATE.search(key):
                    return (*loc, key), _message(key, "key")
            stack.extend(((*loc, key), item) for key, item in reversed(value.items()))
        elif type(value) is list:
            stack.extend(((*loc, i), item) for i, item in reversed(list(enumerate(value))))
    return None


def _message(text: str, what: str) -> str:
    bad = _SURROGATE.search(text)
    assert bad is not None
    return (
        f"the {what} holds {describe_char(bad.group())} at position {bad.start()}; "
        "send valid Unicode text (a surrogate only in a pair)"
    )
