"""The value rules of the configuration: each setting's rule is written beside its field (`setting(default, rule)`),
each section's rules that tie two fields together in its `RULES`; `problems()` applies both.

A rule is a callable `rule(value) -> str | None`: None when the value is fine, else what is wrong with it (the
message a user reads after "file:line: section.key: "). Rules see values after type coercion (ints, finite or not
floats, strings, tuples), so they check ranges and meanings, never types.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Any, Callable, Iterable

Rule = Callable[[Any], "str | None"]

# numpy's legacy seeding (np.random.seed, RandomState) takes seeds below 2**32; torch takes up to 2**64 - 1. Seeds
# below 2**32 work everywhere, also after the small offsets the code adds to derive per-stage seeds.
SEED_LIMIT = 2 ** 32
MAX_PATH_BYTES = 4096     # PATH_MAX on Linux
MAX_NAME_BYTES = 255      # NAME_MAX: one path component


def setting(default: Any, rule: Rule | None = None, **kwargs: Any) -> Any:
    """A dataclass field with its rule in the field's metadata (`rule_of(field)`)."""
    metadata = {"rule": rule} if rule is not None else {}
    if isinstance(default, (list, dict, set)):  # pragma: no cover - sections hold immutable defaults
        raise TypeError("mutable default")
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def rule_of(f: dataclasses.Field) -> Rule | None:
    return f.metadata.get("rule")


def problems(section: Any) -> Iterable[tuple[str, str]]:
    """(key, message) for every rule the section's values break: the fields' own rules first, then the section's
    `RULES` (pairs of a key and a rule over the whole section) once every field is fine on its own."""
    found = False
    for f in dataclasses.fields(section):
        rule = rule_of(f)
        message = rule(getattr(section, f.name)) if rule is not None else None
        if message:
            found = True
            yield f.name, message
    if found:
        return
    for key, rule in getattr(type(section), "RULES", ()):
        message = rule(section)
        if message:
            yield key, message


# --------------------------------------------------------------------------- numbers


def _number(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) >= 1e16:
        return f"{value:.3g}"
    text = repr(value)
    return text if len(text) <= 40 else f"an integer of {len(str(abs(value)))} digits"


def integer(lo: int, hi: int) -> Rule:
    """An integer in [lo, hi]."""

    def rule(value: int) -> str | None:
        if not lo <= value <= hi:
            return f"must be an integer from {lo:,} to {hi:,}, got {_number(value)}"
        return None

    return rule


def seed() -> Rule:
    return integer(0, SEED_LIMIT - 1)


def number(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Rule:
    """A finite number in [lo, hi] (open at either end when asked): NaN and infinities are refused everywhere."""
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"

    def rule(value: float) -> str | None:
        if not math.isfinite(value):
            return f"must be a finite number, got {value}"
        if value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi):
            return f"must be in {left}{lo:g}, {hi:g}{right}, got {_number(value)}"
        return None

    return rule


def positive(hi: float) -> Rule:
    return number(0.0, hi, lo_open=True)


def fraction() -> Rule:
    """In [0, 1)."""
    return number(0.0, 1.0, hi_open=True)


def cpu_threads() -> Rule:
    """0 (one thread) up to the CPUs this process may use (affinity and cgroup quota): more threads than cores only
    oversubscribe them, and 100,000 threads crash the process (and other processes' thread limits with it)."""

    def rule(value: int) -> str | None:
        from engine.runtime.threads import usable_cpus

        cpus = usable_cpus()
        if not 0 <= value <= cpus:
            return f"must be from 0 (one thread) to {cpus} (the CPUs this process may use), got {_number(value)}"
        return None

    return rule


# --------------------------------------------------------------------------- text


def one_of(options: Iterable[str], pattern: str | None = None) -> Rule:
    allowed = tuple(options)
    matcher = re.compile(pattern) if pattern else None

    def rule(value: str) -> str | None:
        if value in allowed or (matcher is not None and matcher.fullmatch(value)):
            return None
        return f"must be one of {', '.join(allowed)}, got {_text(value)}"

    return rule


def _text(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…'"


def plain_text(max_length: int, *, empty: bool = True) -> Rule:
    """A one-line printable string (no NUL or control characters) of at most `max_length` characters."""

    def rule(value: str) -> str | None:
        if not empty and not value.strip():
            return "must not be empty"
        if len(value) > max_length:
            return f"must be at most {max_length} characters, got {len(value):,}"
        if any(not ch.isprintable() for ch in value):
            return f"must not hold control characters (NUL, newlines...), got {_text(value)}"
        return None

    return rule


def path() -> Rule:
    """A usable file-system path: not empty, no NUL byte, encodable, within PATH_MAX / NAME_MAX."""

    def rule(value: str) -> str | None:
        if not value.strip():
            return "must name a path, got an empty string"
        if "\x00" in value:
            return f"must not contain a NUL byte, got {_text(value)}"
        try:
            encoded = os.fsencode(value)
        except UnicodeError:
            return f"cannot be encoded as a file name on this system, got {_text(value)}"
        if len(encoded) > MAX_PATH_BYTES:
            return f"must be at most {MAX_PATH_BYTES} bytes long, got {len(encoded):,}"
        longest = max((len(part) for part in encoded.split(b"/")), default=0)
        if longest > MAX_NAME_BYTES:
            return f"has a component of {longest} bytes; at most {MAX_NAME_BYTES} are allowed"
        if any(not ch.isprintable() for ch in value):
            return f"must not hold control characters, got {_text(value)}"
        return None

    return rule


# --------------------------------------------------------------------------- lists


def each_of(allowed: Iterable[Any], what: str = "value") -> Rule:
    """A non-empty tuple whose every item is in `allowed`, none twice."""
    options = tuple(allowed)

    def rule(values: tuple) -> str | None:
        known = ", ".join(map(str, options))
        if not values:
            return f"must be a non-empty list of {what}s from {known}"
        bad = [v for v in values if v not in options]
        if bad:
            return f"unknown {what}(s) {', '.join(map(repr, bad))}; known: {known}"
        twice = sorted({str(v) for v in values if list(values).count(v) > 1})
        if twice:
            return f"{what}(s) listed twice: {', '.join(twice)}"
        return None

    return rule


def each(item: Rule, *, max_items: int = 1000) -> Rule:
    """A non-empty tuple of at most `max_items` items, each passing `item`."""

    def rule(values: tuple) -> str | None:
        if not values:
            return "must list at least one value"
        if len(values) > max_items:
            return f"must list at most {max_items} values, got {len(values):,}"
        for i, value in enumerate(values):
            message = item(value)
            if message:
                return f"item {i}: {message}"
        return None

    return rule
