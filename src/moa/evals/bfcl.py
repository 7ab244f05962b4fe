"""BFCL, the Berkeley Function Calling Leaderboard (Patil et al.), Python AST categories: does a
recipe call the right function with the right arguments, several at once, or none when none
fits? Scored offline by our checker (`moa.evals.bfcl_check`, checked against bfcl-eval's own),
on the data of the `bfcl-eval` wheel (`moa.evals.bfcl_data`, fetched at first use).

The functions are the run's tools (`--offer tools`, the default): the recipe's answer is its
tool calls, as an agent would receive them (a '.' in a function's name reads as '_', as tool
APIs require; BFCL's types become JSON Schema's); an answer without calls made none. With
`--offer words` they are put to the model in words, as BFCL does for models prompted without a
tool API: their JSON descriptions in a system message, and the answer asked for as a Python
list of calls, `[name(param=value, ...)]`, or `[]`. Either way an answer's calls are scored as
that list (tool calls are written out in it, `write_calls`) and read back with Python's `ast`
(nothing is run).

Splits: `dev` is the items with an even number in their id, `held-out` the odd ones. Items of
the chosen categories (`--category`, repeatable; default all) are taken in turn, one of each
category at a time, so the first N items cover every category.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, zip_longest
from pathlib import Path
from typing import Any, ClassVar

from moa.errors import ConfigError
from moa.evals.benchmark import SPLITS, Benchmark, Items, window
from moa.evals.bfcl_check import check, standard
from moa.evals.bfcl_data import CATEGORIES, VERSION, data_dir, load_category
from moa.strategies.tally import tally
from moa.types import MessagesLike, ToolCall

__all__ = ["BFCL", "SYSTEM", "canonical", "number_of", "read_calls", "tools_of", "write_calls"]

SYSTEM = (
    "You can call these functions (JSON descriptions):\n{functions}\n\n"
    "If the request can be met with them, reply with the calls only, as a Python list: "
    "[function_name(parameter=value, ...), ...], several calls if several are needed. If none "
    "of the functions fits the request, reply with [] only."
)
"""The system message that offers the functions to a model prompted in words."""


def number_of(item_id: str) -> int:
    """The item's number: `simple_python_12` -> 12, `live_simple_3-1-0` -> 3."""
    return int(re.split(r"[_-]", item_id.rsplit("_", 1)[-1])[0])


ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


class Unreadable(ValueError):
    """An answer's calls cannot be read."""


def _name(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _number(node: ast.expr) -> Any:
    """Arithmetic on number literals, computed (never evaluated as code)."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_number(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
        return ARITHMETIC[type(node.op)](_number(node.left), _number(node.right))
    raise Unreadable(ast.unparse(node))


def _value(node: ast.expr) -> Any:
    """A value as BFCL reads it: literals as they are, a name as its text (a variable), a call
    as its text (or as a call when it names its arguments), arithmetic computed."""
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.operand, ast.Constant):
            raise Unreadable(ast.unparse(node))
        operand: Any = node.operand.value
        return -operand  # whatever the operator, as BFCL reads it
    if isinstance(node, ast.List):
        return [_value(v) for v in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_value(v) for v in node.elts)
    if isinstance(node, ast.Dict):
        return {
            _value(k) if k else None: _value(v) for k, v in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.BinOp):
        return _number(node)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _call(node) if node.keywords else ast.unparse(node)
    if isinstance(node, ast.Subscript):
        return ast.unparse(node)
    raise Unreadable(ast.unparse(node))


def _call(node: ast.Call) -> dict[str, dict[str, Any]]:
    return {_name(node.func): {k.arg: _value(k.value) for k in node.keywords if k.arg}}


def read_calls(text: str | None) -> list[dict[str, dict[str, Any]]] | None:
    """The calls of an answer written as a Python list of calls, `{name: {param: value}}` each,
    read as BFCL reads a prompted model's answer (backticks and blank lines around it removed,
    brackets added where missing; arguments by name); None when it cannot be read."""
    body = (text or "").strip("`\n ")
    body = body if body.startswith("[") else "[" + body
    body = body if body.endswith("]") else body + "]"
    try:
        tree = ast.parse(body.strip().strip("'"), mode="eval").body
        if isinstance(tree, ast.Call):
            return [_call(tree)]
        if not isinstance(tree, (ast.List, ast.Tuple, ast.Set)):
            return None
        if not all(isinstance(e, ast.Call) for e in tree.elts):
            return None
        return [_call(e) for e in tree.elts if isinstance(e, ast.Call)]
    except (SyntaxError, Unreadable, ValueError, TypeError, ZeroDivisionError, OverflowError):
        return None


SCHEMA_TYPES = {"dict": "object", "float": "number", "tuple": "array"}
"""BFCL's own type names and JSON Schema's; `any` means no type."""


def _schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _schema(v) for k, v in node.items()}
    kind = node.get("type")
    if kind == "any":
        del out["type"]
    elif isinstance(kind, str):
        out["type"] = SCHEMA_TYPES.get(kind, kind)
    return out


def tools_of(functions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """BFCL's function descriptions as OpenAI's tools."""
    return [
        {
            "type": "function",
            "function": {
                "name": f["name"].replace(".", "_"),
                "description": f.get("description", ""),
                "parameters": _schema(f["parameters"]),
            },
        }
        for f in functions
    ]


def write_calls(calls: Sequence[ToolCall]) -> str | None:
    """Tool calls as BFCL's Python list of calls (`read_calls` reads them back); None when an
    argument list is not a JSON object."""
    parts = []
    for call in calls:
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            return None
        if not isinstance(arguments, dict):
            return None
        given = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        parts.append(f"{call.name}({given})")
    return "[" + ", ".join(parts) + "]"


@dataclass
class BFCL(Benchmark):
    """BFCL (Python AST categories): the share of items where each recipe calls the right
    functions with acceptable arguments, or none where none fits; checked offline."""

    name: ClassVar[str] = "bfcl"
    title: ClassVar[str] = "BFCL"
    kinds: ClassVar[tuple[str, ...]] = ("alone", "rank", "recipe", "self", "select")
    splits: ClassVar[tuple[str, ...]] = SPLITS
    data_help: ClassVar[str | None] = "A folder of BFCL's JSON files (default: fetched)."
    measure: ClassVar[str] = "calls right"
    select_label: ClassVar[str | None] = "vote on calls"

    category: list[str] | None = field(
        default=None, metadata={"help": "Only these categories (repeatable; default: all)."}
    )
    offer: str = field(
        default="tools",
        metadata={
            "help": "How the functions are offered: tools (the run's tools; its tool calls "
            "are scored) or words (a system message; a Python list of calls is read from "
            "the answer).",
        },
    )

    def check(self) -> None:
        if self.offer not in ("tools", "words"):
            raise ConfigError(f"--offer: use tools or words, not {self.offer!r}")

    def load(self, data: Path | None, *, split: str, limit: int | None, offset: int) -> Items:
        folder = data or data_dir()
        present = [c for c in CATEGORIES if (folder / f"BFCL_v4_{c}.json").exists()]
        chosen = self.category or present  # a folder given may hold some categories only
        per = [
            [
                i
                for i in load_category(c, folder)
                if split == "all" or (number_of(i["id"]) % 2 == 0) == (split == "dev")
            ]
            for c in chosen
        ]
        mixed = [i for i in chain.from_iterable(zip_longest(*per)) if i is not None]
        meta = {"categories": chosen, "data": str(data or f"bfcl-eval {VERSION} (Apache-2.0)")}
        return Items(window(mixed, limit, offset), meta)

    def prompt(self, item: dict[str, Any]) -> MessagesLike:
        if self.offer == "tools":
            return list(item["question"])
        functions = json.dumps(item["function"], ensure_ascii=False)
        system = {"role": "system", "content": SYSTEM.format(functions=functions)}
        return [system, *item["question"]]

    def request(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.offer == "tools":
            return {"tools": tools_of(item["function"]), "tool_choice": "auto"}
        return {}

    def answer_text(self, text: str | None, tool_calls: Sequence[ToolCall]) -> str | None:
        if self.offer == "words":
            return text
        return write_calls(tool_calls) if tool_calls else "[]"  # no call made

    def score(self, item: dict[str, Any], text: str | None) -> dict[str, Any]:
        calls = read_calls(text)
        answer = item["answer"] or []
        dots = self.offer == "words"
        verdict = check(item["category"], item["function"], calls, answer, dots=dots)
        return {
            "category": item["category"],
            "calls": calls,
            "correct": verdict.valid,
            "reason": verdict.reason,
        }

    def columns(self, ok: Sequence[dict[str, Any]], n: int) -> dict[str, Any]:
        by: dict[str, list[bool]] = {}
        for r in ok:
            by.setdefault(str(r.get("category")), []).append(bool(r.get("correct")))
        return {"categories": {c: sum(v) / len(v) for c, v in sorted(by.items())}}

    def select(self, item: dict[str, Any], texts: list[str]) -> int:
        """The answer whose calls most answers make (the same functions with the same
        arguments, in any order), ties to the first (greedy) one."""
        reads = [canonical(read_calls(t)) for t in texts]
        index = tally(reads).index
        return 0 if index is None else index


def canonical(calls: list[dict[str, dict[str, Any]]] | None) -> str | None:
    """The calls in one comparable form: sorted, their arguments sorted, ints that are whole
    floats as ints, strings as BFCL compares them; None when none could be read."""
    if calls is None:
        return None

    def norm(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return standard(value)
        if isinstance(value, (list, tuple)):
            return [norm(v) for v in value]
        if isinstance(value, dict):
            return {k: norm(v) for k, v in sorted(value.items())}
        return value

    forms = [
        json.dumps({name: norm(args)}, sort_keys=True)
        for call in calls
        for name, args in call.items()
    ]
    return json.dumps(sorted(forms))
