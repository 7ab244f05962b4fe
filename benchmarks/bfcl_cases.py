"""Cases for benchmarks/bfcl_fidelity.sh: for every item of BFCL's Python AST categories, answers
written as a prompted model would write them, right and wrong in the ways the checker's rules
tell apart (the expected calls, a wrong name, a missing, extra, mistyped or wrong argument, a
string in other case and punctuation, an int for a float, the calls in another order, a call
missing or repeated, no call, unreadable text). Prints them as JSON lines on stdout.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

from moa.evals.bfcl_data import CATEGORIES, SCORED, load_category


def first(acceptable: list[Any]) -> Any:
    """The first acceptable value that is not "" (left out), with dicts built the same way."""
    if not isinstance(acceptable, list):
        return acceptable
    value = next((a for a in acceptable if a != ""), None)
    if isinstance(value, dict):
        return {k: first(v) for k, v in value.items() if first(v) is not None}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [{k: first(v) for k, v in d.items() if first(v) is not None} for d in value]
    return value


def written(calls: list[dict[str, dict[str, Any]]]) -> str:
    parts = []
    for call in calls:
        for name, args in call.items():
            inner = ", ".join(f"{k}={v!r}" for k, v in args.items())
            parts.append(f"{name}({inner})")
    return "[" + ", ".join(parts) + "]"


def expected(answer: list[dict[str, dict[str, list[Any]]]]) -> list[dict[str, dict[str, Any]]]:
    out = []
    for call in answer:
        for name, params in call.items():
            out.append({name: {k: v for k, acc in params.items() if (v := first(acc)) is not None}})
    return out


def variants(item: dict[str, Any], rng: random.Random) -> list[str]:
    if item["category"] not in SCORED:
        name = item["function"][0]["name"] if item["function"] else "lookup"
        return ["[]", f"[{name}()]", "I cannot help with that.", f"[{name}(x=1), ]"]
    calls = expected(item["answer"])
    texts = [written(calls), "[]", "no call", written(calls).replace("=", ":", 1)]
    k = rng.randrange(len(calls))
    name, args = next(iter(calls[k].items()))

    def edit(
        change: dict[str, Any] | None = None, drop: str | None = None, rename: str | None = None
    ) -> str:
        new = dict(args)
        if drop:
            new.pop(drop, None)
        new.update(change or {})
        copy = [dict(c) for c in calls]
        copy[k] = {rename or name: new}
        return written(copy)

    texts.append(edit(rename=name + "_x"))
    texts.append(edit(change={"unexpected_parameter": 1}))
    for param, value in list(args.items())[:3]:
        texts.append(edit(drop=param))
        if isinstance(value, bool):
            texts += [edit({param: not value}), edit({param: int(value)})]
        elif isinstance(value, int):
            texts += [
                edit({param: value + 1000}),
                edit({param: str(value)}),
                edit({param: float(value)}),
            ]
        elif isinstance(value, float):
            texts += [
                edit({param: value + 0.5}),
                edit({param: int(value)}),
                edit({param: str(value)}),
            ]
        elif isinstance(value, str):
            texts += [
                edit({param: value.upper().replace(" ", "-")}),
                edit({param: value + "zz"}),
                edit({param: 7}),
            ]
        elif isinstance(value, list):
            texts += [
                edit({param: []}),
                edit({param: list(reversed(value))}),
                edit({param: tuple(value)}),
            ]
        elif isinstance(value, dict):
            texts += [edit({param: {}}), edit({param: {**value, "extra": 1}})]
    for call in item["answer"]:  # the second acceptable value of each parameter
        for cname, params in call.items():
            alt = {p: acc[1] for p, acc in params.items() if len(acc) > 1 and acc[1] != ""}
            if alt and cname == name:
                texts.append(edit(alt))
    if len(calls) > 1:
        texts += [written(calls[::-1]), written(calls[1:]), written([*calls, calls[0]])]
    return texts


def main() -> None:
    rng = random.Random(0)
    for category in CATEGORIES:
        for item in load_category(category):
            for text in variants(item, rng):
                case = {k: item[k] for k in ("id", "category", "function", "answer")}
                print(json.dumps({**case, "text": text}))


if __name__ == "__main__":
    sys.exit(main())
