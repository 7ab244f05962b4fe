"""Our checker of the Berkeley Function Calling Leaderboard's Python AST categories, written from
its documented rules (and checked verdict for verdict against bfcl-eval's own checker by
`benchmarks/bfcl_fidelity.sh`):

- a call is right when its function name is the expected one, every required parameter is
  there, every parameter given is one the function and the answer know, each value has the
  parameter's type (an int passes for a float; a value of the answer's own type passes as a
  variable) and is among the acceptable values (strings compared without case, spaces or
  `,./-_*^`, lists element by element, dicts key by key), and every parameter left out may be
  left out (its acceptable values include "");
- simple and live_simple: exactly one call; multiple: exactly one call, checked against the
  expected one; parallel kinds: as many calls as expected, matched in any order (each expected
  call takes the first unmatched call that passes);
- irrelevance kinds: right when no call is made; live_relevance: right when one is.

A call is `{name: {parameter: value}}`, as BFCL writes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

__all__ = ["Verdict", "check", "check_call", "standard"]

TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
"""BFCL's parameter types as Python types."""

Call = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str = ""


RIGHT = Verdict(True)


def standard(text: str) -> str:
    """A string as compared: lower case, without spaces or `,./-_*^`, single quotes double."""
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def _standard_all(values: Iterable[Any]) -> list[Any]:
    return [standard(v) if isinstance(v, str) else v for v in values]


def _answer_type(acceptable: Sequence[Any]) -> type | None:
    """The type of the first acceptable value that is not "" (left out)."""
    return next((type(v) for v in acceptable if v != ""), None)


def _typed(value: Any, acceptable: Sequence[Any], want: type, inner: type | None) -> Verdict | bool:
    """Whether `value` has the parameter's type: False, or True when it passes as a variable
    (a value of the answer's own type), or a Verdict (right, not a variable)."""
    answer_type = _answer_type(acceptable)
    variable = answer_type is not None and answer_type is not want
    if type(value) is want:
        if inner is None:
            return True if variable else RIGHT
        values = cast(list[Any], value)
        for item in acceptable:
            elements = item if isinstance(item, list) else None
            if elements is None or all(_typed(v, elements, inner, None) for v in values):
                return True if variable else RIGHT
        return False
    return answer_type is not None and type(value) is answer_type


def _dict_matches(value: Mapping[str, Any], acceptable: Any) -> bool:
    if not isinstance(acceptable, dict):
        return False
    for key, item in value.items():
        if key not in acceptable:
            return False
        if (standard(item) if isinstance(item, str) else item) not in _standard_all(
            acceptable[key]
        ):
            return False
    return all(key in value or "" in values for key, values in acceptable.items())


def _value_ok(value: Any, acceptable: Sequence[Any], want: type, inner: type | None) -> bool:
    if want is dict:
        return any(_dict_matches(value, a) for a in acceptable if a != "")
    if want is list and inner is dict:
        return any(
            len(value) == len(a)
            and all(_dict_matches(v, d) for v, d in zip(value, a, strict=False))
            for a in acceptable
        )
    if want is str:
        return standard(value) in _standard_all(a for a in acceptable if isinstance(a, str))
    if want is list:
        return _standard_all(value) in [_standard_all(a) for a in acceptable]
    return bool(value in acceptable)


def check_call(
    function: Mapping[str, Any], call: Call, expected: Call, *, dots: bool = True
) -> Verdict:
    """One call against one expected call (`{name: {parameter: [acceptable values]}}`), the
    function described by `function`. Without `dots`, a '.' in a function's name reads as '_'
    (as tool-calling APIs require)."""
    name = function["name"] if dots else function["name"].replace(".", "_")
    if name not in call:
        return Verdict(False, f"wrong function: expected {name}")
    given = call[name]
    answer = next(iter(expected.values()))
    properties = function["parameters"]["properties"]
    for required in function["parameters"].get("required", []):
        if required not in given:
            return Verdict(False, f"missing required parameter {required}")
    for param, value in given.items():
        if param not in properties or param not in answer:
            return Verdict(False, f"unexpected parameter {param}")
        kind = properties[param]["type"]
        want = TYPES[kind]
        inner = TYPES[properties[param]["items"]["type"]] if kind in ("array", "tuple") else None
        if kind == "tuple" and isinstance(value, tuple):
            value = list(value)
        if kind == "float" and type(value) is int:
            value = float(value)
        typed = _typed(value, answer[param], want, inner)
        if typed is False:
            return Verdict(False, f"wrong type for {param}: {type(value).__name__}")
        special = typed is not True and (want in (dict, str, list))
        ok = _value_ok(value, answer[param], want, inner) if special else value in answer[param]
        if not ok:
            return Verdict(False, f"wrong value for {param}: {value!r}")
    for param, acceptable in answer.items():
        if param not in given and "" not in acceptable:
            return Verdict(False, f"missing parameter {param}")
    return RIGHT


def _function(functions: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    return next(f for f in functions if f["name"] == name)


def check(
    category: str,
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[Call] | None,
    expected: Sequence[Call],
    *,
    dots: bool = True,
) -> Verdict:
    """The calls a model made (None: none could be read from its answer) against an item of
    `category` (see the module docstring)."""
    if "irrelevance" in category:
        return Verdict(not calls, "a call was made" if calls else "")
    if category == "live_relevance":
        return Verdict(bool(calls), "" if calls else "no call was made")
    calls = calls or []
    if len(calls) != len(expected):
        return Verdict(False, f"{len(calls)} calls, {len(expected)} expected")
    if "parallel" not in category:  # simple kinds describe one function; multiple, several
        function = _function(functions, next(iter(expected[0])))
        if "multiple" not in category:
            function = functions[0]
        return check_call(function, calls[0], expected[0], dots=dots)
    matched: set[int] = set()
    for want in expected:
        function = _function(functions, next(iter(want)))
        found = next(
            (
                i
                for i, call in enumerate(calls)
                if i not in matched and check_call(function, call, want, dots=dots).valid
            ),
            None,
        )
        if found is None:
            return Verdict(False, f"no call matches {next(iter(want))}")
        matched.add(found)
    return RIGHT
