"""Choosing among candidate programs by what they do: run each on the examples the prompt gives
(its doctests, with their expected results) and on variations of those inputs, in the sandbox,
and pick the candidate that passes the most examples and whose behaviour the most others share
(compared only on the inputs both accept). No model call.

    choice = select_by_behaviour(texts, prompt=prompt, entry_point="add")
    texts[choice.index]
"""

from __future__ import annotations

import ast
import asyncio
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from moa.sandbox import SandboxLimits, run_python
from moa.strategies.agreement import Choice

__all__ = [
    "Behaviour",
    "aselect_by_behaviour",
    "assemble_program",
    "behaviour",
    "examples",
    "extract_code",
    "function_prompt",
    "probe_calls",
    "select_by_behaviour",
    "typed_calls",
]

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.S | re.M)
"""A fenced block: its fences begin lines (a ``` met inside a sentence is not one)."""
_MARK = "@@moa-behaviour@@"


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The code in a model's answer: the fenced block that defines `entry_point` (else the first
    Python or unlabelled block), or the whole text when it has no fence."""
    blocks: list[tuple[str, str]] = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    if not blocks:
        return text
    if entry_point:
        for _, body in blocks:
            if re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", body, re.M):
                return body
    for lang, body in blocks:
        if lang in ("python", "py", "python3", ""):
            return body
    return blocks[0][1]


def function_prompt(message: str) -> tuple[str, str] | None:
    """From a user's message that asks for a function (a signature and docstring, in a fence or
    not): that code and the function's name (the last one it defines, after any helpers), or
    None when it defines none. What `select_by_behaviour` needs, for a strategy that sees only
    the conversation."""
    code = extract_code(message)
    names = re.findall(r"^(?:async\s+)?def\s+(\w+)\s*\(", code, re.M)
    if not names:
        return None
    return code, names[-1]


def assemble_program(prompt: str, text: str, entry_point: str) -> str:
    """A runnable program from a function's prompt (signature and docstring, imports, helpers)
    and a model's answer: the prompt, then the answer's code, which redefines the function; an
    answer that is only the function's body continues the prompt instead."""
    code = extract_code(text, entry_point)
    if re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return f"{prompt}\n\n{code}\n"
    return f"{prompt}{code}\n"


def _calls(text: str, name: str) -> list[tuple[int, int]]:
    """Spans of the calls `name(...)` in text, parentheses balanced."""
    spans = []
    for found in re.finditer(rf"(?<![\w.]){re.escape(name)}\s*\(", text):
        depth, i = 0, found.end() - 1
        while i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            if depth == 0:
                spans.append((found.start(), i + 1))
                break
            i += 1
    return spans


def _literal(text: str) -> str | None:
    text = text.strip().rstrip(".,;")
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return text


_ARROW = re.compile(r"\s*(?:==>|=>|->|==|➞|should\s+return|returns?|is)\s*:?\s*(.+)", re.I)


def examples(prompt: str, entry_point: str) -> list[tuple[str, str | None]]:
    """The example calls in the function's docstring, each with its expected result when the
    prompt states one as a Python literal: `>>> f(x)` followed by a result line, or
    `f(x) == y`, `f(x) ==> y`, `f(x) -> y`, `f(x) should return y`."""
    head = re.search(rf"def\s+{re.escape(entry_point)}\s*\(", prompt)
    doc = prompt[head.end() :] if head else prompt
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for start, end in _calls(doc, entry_point):
        call = doc[start:end]
        try:
            ast.parse(call, mode="eval")
        except SyntaxError:
            continue
        line_end = doc.find("\n", end)
        rest = doc[end : line_end if line_end >= 0 else len(doc)]
        expected = None
        if (arrow := _ARROW.match(rest)) is not None:
            expected = _literal(arrow.group(1))
        elif not rest.strip() and doc[:start].rstrip(" \t").endswith(">>>"):
            nxt = doc[line_end + 1 :].split("\n", 1)[0] if line_end >= 0 else ""
            expected = None if nxt.strip().startswith(">>>") else _literal(nxt)
        if call not in seen:
            seen.add(call)
            out.append((call, expected))
    if len(_parameters(prompt, entry_point)) == 1:  # 'Input: [4,2,3]  Output: 2', another form
        for found in _INPUT.finditer(doc):
            arg, expected = _literal(found.group(1)), _literal(found.group(2))
            call = f"{entry_point}({arg})"
            if arg is not None and call not in seen:
                seen.add(call)
                out.append((call, expected))
    return out


_INPUT = re.compile(r"Input\s*:\s*(?:\w+\s*=\s*)?(.+?)\s*\n?\s*Output\s*:\s*(.+)")


def _parameters(prompt: str, entry_point: str) -> list[tuple[str, str]]:
    """(name, annotation) of the function's parameters, '' where it has no annotation."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            args = node.args.args
            return [(a.arg, ast.unparse(a.annotation) if a.annotation else "") for a in args]
    return []


_SAMPLES: dict[str, list[Any]] = {
    "int": [0, 1, 2, 3, 7, 10, 25],
    "float": [0.0, 1.5, -2.0, 3.25],
    "str": ["", "a", "abc", "Hello World", "racecar"],
    "bool": [True, False],
    "list[int]": [[], [1], [1, 2, 3], [5, 3, -1, 4, 4]],
    "list[float]": [[], [1.0], [1.0, 2.5, -3.5]],
    "list[str]": [[], ["a"], ["ab", "b", "abc"]],
}
_BY_NAME = {
    "n": "int",
    "N": "int",
    "k": "int",
    "num": "int",
    "x": "int",
    "s": "str",
    "string": "str",
}
_BY_NAME |= {"text": "str", "word": "str", "sentence": "str", "lst": "list[int]"}
_BY_NAME |= {"arr": "list[int]", "l": "list[int]", "numbers": "list[int]"}


def typed_calls(prompt: str, entry_point: str, *, limit: int = 8) -> list[str]:
    """Calls made from the parameters' annotations (or telling names: n, s, lst, ...), for
    prompts that give no example; none if any parameter's type cannot be guessed."""
    kinds = []
    for name, annotation in _parameters(prompt, entry_point):
        kind = annotation.lower().replace("typing.", "").replace(" ", "") or _BY_NAME.get(name, "")
        if kind not in _SAMPLES:
            return []
        kinds.append(_SAMPLES[kind])
    if not kinds:
        return []
    count = min(limit, max(len(k) for k in kinds))
    rows = [[k[i % len(k)] for k in kinds] for i in range(count)]
    return [f"{entry_point}({', '.join(repr(v) for v in row)})" for row in rows]


def _variants(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, 0, -value]
    if isinstance(value, float):
        return [value * 2, -value, 0.0]
    if isinstance(value, str):
        return [value[::-1], "", value.upper(), value + value[:1]]
    if isinstance(value, list):
        return [value[::-1], [], value[:-1], value + value[:1]]
    if isinstance(value, tuple):
        return [value[::-1], value[:-1]]
    return []


def probe_calls(calls: Sequence[str], entry_point: str, *, limit: int = 24) -> list[str]:
    """More inputs, made from the example calls by varying one literal argument at a time
    (numbers shifted, strings and lists reversed, shortened, emptied); at most `limit`."""
    out: list[str] = []
    seen = set(calls)
    for call in calls:
        node = ast.parse(call, mode="eval").body
        if not isinstance(node, ast.Call) or node.keywords:
            continue
        try:
            args = [ast.literal_eval(a) for a in node.args]
        except (ValueError, SyntaxError, TypeError):
            continue
        for i, arg in enumerate(args):
            for new in _variants(arg):
                text = (
                    f"{entry_point}({', '.join(repr(a) for a in [*args[:i], new, *args[i + 1 :]])})"
                )
                if text not in seen and len(out) < limit:
                    seen.add(text)
                    out.append(text)
    return out


_RUNNER = """

import json as _json, signal as _signal
def _moa_alarm(*_args):
    raise TimeoutError("call timed out")
_signal.signal(_signal.SIGALRM, _moa_alarm)
_moa_out = []
_moa_hung = False
for _moa_call, _moa_expected in _json.loads({cases!r}):
    if _moa_hung:  # one call ran out of time: the rest count as timed out too
        _moa_out.append(["error", "TimeoutError", None if _moa_expected is None else False])
        continue
    try:
        _signal.setitimer(_signal.ITIMER_REAL, {per_call})
        _moa_result = eval(_moa_call)
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _moa_match = None if _moa_expected is None else bool(_moa_result == eval(_moa_expected))
        _moa_out.append(["ok", repr(_moa_result)[:400], _moa_match])
    except BaseException as _moa_exc:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _moa_hung = isinstance(_moa_exc, TimeoutError)
        _moa_miss = None if _moa_expected is None else False
        _moa_out.append(["error", type(_moa_exc).__name__, _moa_miss])
print({mark!r} + _json.dumps(_moa_out))
"""


@dataclass(frozen=True)
class Behaviour:
    """What one candidate did: per call, its result's repr or None (it raised or timed out),
    and per example with an expected result, whether it matched. `runs` is False when the
    program did not even load."""

    runs: bool
    results: tuple[str | None, ...]
    passed: int
    checked: int


def behaviour(
    program: str,
    cases: Sequence[tuple[str, str | None]],
    *,
    limits: SandboxLimits | None = None,
    per_call_s: float = 1.0,
) -> Behaviour:
    """Run `program`, then each case (call, expected or None), in one sandboxed child."""
    runner = _RUNNER.format(cases=json.dumps(list(cases)), per_call=per_call_s, mark=_MARK)
    outcome = run_python(program + runner, limits=limits, main=False)
    line = next((ln for ln in reversed(outcome.stdout.splitlines()) if ln.startswith(_MARK)), None)
    if line is None:
        return Behaviour(False, tuple(None for _ in cases), 0, sum(e is not None for _, e in cases))
    rows = json.loads(line[len(_MARK) :])
    results = tuple(r[1] if r[0] == "ok" else None for r in rows)
    return Behaviour(
        True, results, sum(r[2] is True for r in rows), sum(r[2] is not None for r in rows)
    )


def _agreement(a: Behaviour, b: Behaviour) -> float:
    both = [
        (x, y) for x, y in zip(a.results, b.results, strict=True) if x is not None and y is not None
    ]
    return sum(x == y for x, y in both) / len(both) if both else 0.0


def select_by_behaviour(
    texts: Sequence[str],
    *,
    prompt: str,
    entry_point: str,
    greedy: int = 0,
    limits: SandboxLimits | None = None,
    probes: int = 24,
) -> Choice:
    """The candidate that passes the most of the prompt's examples and, among those, whose
    behaviour the others share most (the sum of its agreement with each other candidate on the
    inputs both accept). Ties go to `greedy`, then to the earliest. Scores: passed examples plus
    that agreement divided by the number of candidates (so it never outweighs one example)."""
    if not texts:
        raise ValueError("no candidates to choose from")
    found = examples(prompt, entry_point)
    more = probe_calls([c for c, _ in found], entry_point, limit=probes)
    if not found:
        more = typed_calls(prompt, entry_point)
    cases = found + [(c, None) for c in more]
    runs = [
        behaviour(assemble_program(prompt, t, entry_point), cases, limits=limits) for t in texts
    ]
    count = len(texts)
    scores = []
    for i, b in enumerate(runs):
        if not b.runs:
            scores.append(-1.0)
            continue
        shared = sum(_agreement(b, other) for j, other in enumerate(runs) if j != i and other.runs)
        scores.append(b.passed + shared / count)
    best = max(scores)
    tied = [i for i, s in enumerate(scores) if math.isclose(s, best, abs_tol=1e-9)]
    index = greedy if greedy in tied else tied[0]
    checked = runs[index].checked
    reason = (
        f"behaviour: passed {runs[index].passed}/{checked} prompt examples, {len(cases)} inputs run"
    )
    return Choice(index, tuple(scores), reason)


async def aselect_by_behaviour(
    texts: Sequence[str],
    *,
    prompt: str,
    entry_point: str,
    greedy: int = 0,
    limits: SandboxLimits | None = None,
    probes: int = 24,
) -> Choice:
    """`select_by_behaviour` in a worker thread."""
    return await asyncio.to_thread(
        select_by_behaviour,
        texts,
        prompt=prompt,
        entry_point=entry_point,
        greedy=greedy,
        limits=limits,
        probes=probes,
    )
