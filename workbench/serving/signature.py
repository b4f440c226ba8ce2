"""An MLflow model's input signature, and the per-field checkers request bodies are validated
with.

Each `Signature` precomputes one checker function per field, so that checking a record costs
one dict lookup and one call per field; `serving.payloads` parses request bodies with them,
`serving.openapi` describes them.

Never imports mlflow; `yaml` is imported lazily by `read_signature`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

#: MLflow ColSpec types with a checker; others (array, object, map, any) are checked loosely.
COLUMN_TYPES = ("double", "float", "long", "integer", "string", "boolean", "datetime", "binary")

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_FLOAT32_MAX = 3.4028234663852886e38
_NAMES_SHOWN = 8


class ModelError(WorkbenchError):
    """A model cannot be read or served; the message is one line naming the file or version."""


@dataclass(frozen=True)
class Field:
    name: str
    type: (
        str  # MLflow ColSpec type: double, float, long, integer, string, boolean, datetime, binary
    )
    required: bool = True


@dataclass(frozen=True)
class Signature:
    inputs: tuple[Field, ...]

    def __post_init__(self) -> None:
        # Precomputed once per signature, outside the dataclass fields (not compared, not hashed).
        plan = tuple((f.name, _CHECKERS.get(f.type, _check_any), f.required) for f in self.inputs)
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "_names", frozenset(f.name for f in self.inputs))
        object.__setattr__(self, "_takes", _name_list([f.name for f in self.inputs]))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickle by inputs only: the precomputed checkers include closures.
        return (Signature, (self.inputs,))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.inputs]


def _name_list(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown + ", ..." if len(names) > _NAMES_SHOWN else shown


# -- reading the MLmodel file -------------------------------------------------------------------


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    """The parsed `MLmodel` file of an MLflow model directory."""
    path = Path(model_dir) / "MLmodel"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file (not an MLflow model directory)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot be read ({exc})") from None
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        spec = yaml.load(text, Loader=loader)  # a safe loader (C if available)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ModelError(f"{path}: not valid YAML{where}") from None
    if not isinstance(spec, dict):
        raise ModelError(f"{path}: not an MLmodel file (expected a YAML mapping)")
    return spec


def read_signature(model_dir: Path) -> Signature:
    """The column-based input signature in `model_dir/MLmodel`."""
    path = Path(model_dir) / "MLmodel"
    return signature_from_mlmodel(read_mlmodel(model_dir), path)


def signature_from_mlmodel(spec: dict[str, Any], path: Path) -> Signature:
    """The input signature of an already parsed MLmodel (`path` names it in errors)."""
    sig = spec.get("signature")
    raw = sig.get("inputs") if isinstance(sig, dict) else None
    if not raw:
        raise ModelError(f"{path}: the model has no input signature")
    try:
        cols = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise ModelError(f"{path}: signature.inputs is not valid JSON") from None
    if not isinstance(cols, list) or not cols:
        raise ModelError(f"{path}: signature.inputs is not a list of columns")
    fields: list[Field] = []
    seen: set[str] = set()
    for i, col in enumerate(cols):
        if not isinstance(col, dict):
            raise ModelError(f"{path}: signature input {i} is not a column spec")
        ctype = col.get("type")
        if ctype == "tensor":
            raise ModelError(
                f"{path}: the model has a tensor signature; only column-based signatures "
                "can be served"
            )
        name = col.get("name")
        if not isinstance(name, str) or not name:
            raise ModelError(f"{path}: signature input {i} has no column name")
        if not isinstance(ctype, str):
            raise ModelError(f"{path}: signature input {name!r} has no type")
        if name in seen:
            raise ModelError(f"{path}: signature input {name!r} appears twice")
        seen.add(name)
        fields.append(Field(name=name, type=ctype, required=bool(col.get("required", True))))
    return Signature(inputs=tuple(fields))


# -- per-field checkers --------------------------------------------------------------------------


class _Invalid(Exception):
    """A value does not fit its field: (message, error type)."""


def _show(v: Any) -> str:
    """A value as the client wrote it, short."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return repr(v if len(v) <= 40 else v[:37] + "...")
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, int) and not -(10**30) < v < 10**30:
        return "a huge integer"
    return repr(v)


_isfinite = math.isfinite


def _check_double(v: Any) -> float:
    t = type(v)
    if t is float:
        if _isfinite(v):
            return v  # type: ignore[no-any-return]
        raise _Invalid(f"expected a finite number, got {_show(v)}", "finite_number")
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise _Invalid(
                "expected a finite number, got a huge integer", "finite_number"
            ) from None
    raise _Invalid(f"expected a number, got {_show(v)}", "float_type")


def _check_float(v: Any) -> float:
    f = _check_double(v)
    if -_FLOAT32_MAX <= f <= _FLOAT32_MAX:
        return f
    raise _Invalid(f"number out of range for a 32-bit float, got {_show(v)}", "finite_number")


def _int_checker(lo: int, hi: int, bits: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        t = type(v)
        if t is int:
            if lo <= v <= hi:
                return v  # type: ignore[no-any-return]
        elif t is float:
            if not v.is_integer():
                raise _Invalid(f"expected an integer, got {_show(v)}", "int_from_float")
            if lo <= v <= hi:
                return int(v)
        else:
            raise _Invalid(f"expected an integer, got {_show(v)}", "int_type")
        raise _Invalid(f"integer out of range for {bits} bits, got {_show(v)}", "int_range")

    return check


def _check_string(v: Any) -> str:
    if type(v) is str:
        return v
    raise _Invalid(f"expected a string, got {_show(v)}", "string_type")


def _check_boolean(v: Any) -> bool:
    if v is True or v is False:
        return v
    raise _Invalid(f"expected true or false, got {_show(v)}", "bool_type")


def _check_datetime(v: Any) -> str:
    if type(v) is str:
        try:
            datetime.fromisoformat(v)
        except ValueError:
            pass
        else:
            return v
        raise _Invalid(f"expected an ISO-8601 date-time, got {_show(v)}", "datetime_parsing")
    raise _Invalid(f"expected an ISO-8601 date-time string, got {_show(v)}", "datetime_type")


def _check_binary(v: Any) -> str:
    if type(v) is str:
        return v
    raise _Invalid(f"expected a string (binary data), got {_show(v)}", "string_type")


def _check_array(v: Any) -> list[Any]:
    if type(v) is list:
        return v
    raise _Invalid(f"expected an array, got {_show(v)}", "list_type")


def _check_object(v: Any) -> dict[str, Any]:
    if type(v) is dict:
        return v
    raise _Invalid(f"expected an object, got {_show(v)}", "dict_type")


def _check_any(v: Any) -> Any:
    return v


_CHECKERS: dict[str, Callable[[Any], Any]] = {
    "double": _check_double,
    "float": _check_float,
    "long": _int_checker(_LONG_MIN, _LONG_MAX, 64),
    "integer": _int_checker(_INT_MIN, _INT_MAX, 32),
    "string": _check_string,
    "boolean": _check_boolean,
    "datetime": _check_datetime,
    "binary": _check_binary,
    "array": _check_array,
    "object": _check_object,
    "map": _check_object,
}
