"""The protocol's wire format and field checks, without the message classes (engine/service/protocol.py).

One JSON object per line, UTF-8, at most `MAX_MESSAGE_BYTES`, nested at most `MAX_DEPTH` levels, every integer
within 64 bits and every float convertible; `decode_line` refuses anything else with a `ProtocolError` (its `code`
one of `ERROR_CODES`) before a message class is built, so no value that can break a later `repr`, `json.dumps` or
`float()` (a 900-deep task, a 400-digit number) ever reaches the engine's queue.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Union

MAX_MESSAGE_BYTES = 1 << 20
MAX_DEPTH = 32             # nesting of objects and lists in one message (the deepest real one, a result table, is ~8)
MAX_ID_CHARS = 200         # a command's `id`, echoed in the reply: bounded so an error reply always fits
INT64 = 1 << 63


class ProtocolError(ValueError):
    """A line that is not a valid message. `code` is one of ERROR_CODES; `request_id` is the offending
    command's `id` when it could be read, so the engine can address its error reply."""

    def __init__(self, message: str, code: str = "malformed", request_id: str | None = None):
        super().__init__(message)
        self.message, self.code, self.request_id = message, code, request_id


ERROR_CODES = (
    "malformed",       # not JSON, not an object, not UTF-8, nested too deeply
    "oversized",       # longer than MAX_MESSAGE_BYTES
    "version",         # missing or unsupported "v"
    "unknown_type",    # no such command / event
    "missing_field",
    "extra_field",
    "bad_field",       # wrong type or value
    "not_a_command",   # an event sent to the engine
    "no_job",          # pause / resume / stop with nothing to act on
    "busy",            # the engine is shutting down
    "job_failed",      # a job raised
    "internal",
)


def request_id(obj: Any) -> str | None:
    """The `id` an error reply may repeat: a string of at most MAX_ID_CHARS characters, else None."""
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str) and len(rid) <= MAX_ID_CHARS else None


# --------------------------------------------------------------------------- lines


def decode_line(line: bytes | str) -> dict[str, Any]:
    """The JSON object of one line, bounded in size, depth and numbers; ProtocolError otherwise."""
    raw = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else bytes(line)
    if len(raw.rstrip(b"\r\n")) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}", "oversized")
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_nan_constant)
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: bad JSON, or an integer of over 4,300 digits
        raise ProtocolError(f"not a JSON line: {str(exc)[:200]}", "malformed") from None
    except RecursionError:
        raise ProtocolError("not a JSON line: nested too deeply", "malformed") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"a message must be a JSON object, got {type(obj).__name__}", "malformed")
    problem = bounds_problem(obj)
    if problem:
        raise ProtocolError(problem, "malformed" if "nested" in problem else "bad_field", request_id(obj))
    if isinstance(obj.get("id"), str) and len(obj["id"]) > MAX_ID_CHARS:
        raise ProtocolError(f"field 'id' must be at most {MAX_ID_CHARS} characters, got {len(obj['id']):,}",
                            "bad_field")
    return obj


def bounds_problem(obj: Any) -> str | None:
    """What breaks the depth or number bounds in a decoded value, or None (iterative: no recursion limit to hit)."""
    stack: list[tuple[Any, int, str]] = [(obj, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep (at {where or 'the top'})"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                stack.append((item, depth + 1, f"{where}.{key}" if where else str(key)))
        elif isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
            return f"field {where!r}: an integer of {len(str(abs(value)))} digits is outside 64 bits"
    return None


def encode_line(obj: dict[str, Any], what: str) -> bytes:
    line = json.dumps(obj, separators=(",", ":"), allow_nan=True).encode() + b"\n"
    if len(line) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"{what}: message of {len(line)} bytes exceeds {MAX_MESSAGE_BYTES}", "oversized")
    return line


def _nan_constant(name: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


# --------------------------------------------------------------------------- fields


_HINTS: dict[type, dict[str, Any]] = {}


def hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def check_type(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(check_type(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:  # 64-bit: a 4,000-digit seed or step count is an error reply, not a job that fails later
        return isinstance(value, int) and not isinstance(value, bool) and -INT64 <= value < INT64
    if tp is float:
        if isinstance(value, int) and not isinstance(value, bool):
            return -INT64 <= value < INT64      # a 400-digit integer would overflow float()
        return isinstance(value, float)
    if tp is str:
        return isinstance(value, str)
    if origin is list or tp is list:
        args = typing.get_args(tp)
        return isinstance(value, list) and (not args or all(check_type(v, args[0]) for v in value))
    if origin is dict or tp is dict:
        args = typing.get_args(tp)
        return isinstance(value, dict) and all(isinstance(k, str) for k in value) and (
            not args or all(check_type(v, args[1]) for v in value.values()))
    raise TypeError(f"protocol field type {tp!r} not supported")


def check_fields(msg: Any) -> None:
    """Every field of a message instance has its annotated type (ints become floats where floats are due)."""
    types_ = hints(type(msg))
    rid = getattr(msg, "id", None)
    rid = rid if isinstance(rid, str) and len(rid) <= MAX_ID_CHARS else None
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if not check_type(value, types_[f.name]):
            raise ProtocolError(
                f"{msg.TYPE}: field {f.name!r} must be {type_name(types_[f.name])}, got {type(value).__name__} "
                f"{_short(value)}", "bad_field", rid)
        if types_[f.name] is float and isinstance(value, int):
            object.__setattr__(msg, f.name, float(value))


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return "(not shown)"
    return text if len(text) <= 80 else text[:77] + "…"


def choice(name: str, value: Any, allowed: tuple[str, ...], rid: str | None = None) -> None:
    if value is not None and value not in allowed:
        raise ProtocolError(f"field {name!r}: {_short(value)} is not one of {', '.join(allowed)}", "bad_field", rid)


def text(name: str, value: Any, rid: str | None = None, *, max_chars: int = 300) -> None:
    """A name-like field (task, run, target): when given, a non-empty printable string of at most max_chars."""
    if value is None:
        return
    if not value.strip():
        raise ProtocolError(f"field {name!r} must not be empty", "bad_field", rid)
    if len(value) > max_chars:
        raise ProtocolError(f"field {name!r} must be at most {max_chars} characters, got {len(value):,}",
                            "bad_field", rid)
    if not value.isprintable():
        raise ProtocolError(f"field {name!r} must not hold control characters, got {_short(value)}", "bad_field", rid)


def seed_field(value: Any, limit: int, rid: str | None = None) -> None:
    if value is not None and not 0 <= value < limit:
        raise ProtocolError(f"field 'seed' must be from 0 to 2**32 - 1, got {value}", "bad_field", rid)


def plain(value: Any) -> Any:
    """JSON-able copy: numpy / torch scalars and arrays become Python numbers and lists, tuples become lists."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars, torch tensors
        return plain(tolist())
    item = getattr(value, "item", None)
    if callable(item):
        return plain(item())
    raise ProtocolError(f"value of type {type(value).__name__} cannot be sent in a message", "bad_field")
