"""Every rule of the `local` recipe scored on the same four answers, after the fact.

The answers are those of benchmarks/recipes/local-harvest.yaml (benchmarks/held_out_harvest.sh):
per problem, the greedy answer of Qwen2.5-Coder-1.5B and its three samples (T=0.7, seeds 0-2),
each decoded to its end, with its mean token log-probability. Each rule picks one of the four
(none makes a model call), and the pick is scored by the benchmark's own scorer:

- `greedy`: the first answer, the single model alone (the same prompt and call);
- `sample k`: one sample alone; `any`: some answer is right (what a perfect selector gets);
- `plurality`: the vote on final numbers, ties to the greedy answer (moa.strategies.tally.tally);
- `cisc T=t`: that vote weighted by exp(mean log-probability / t) (CISC, arXiv 2502.06233);
- `agreement`: the answer with the most word-bigram overlap with the others (Agent Forest);
- `behaviour`: the function whose behaviour on the prompt's examples the others share (code);
- `call vote`: the calls most answers make, canonicalised, ties to the greedy answer (BFCL);
- `checks`: the answer that meets the most of the constraints the prompt states in words
  (moa.strategies.constraints: our own reading of the prompt, no benchmark checker);
- `auto: N/C/P`: the answers' kind read as the strategy reads it (moa.strategies.read.answer_kind),
  then the rule N for numbers, C for code and P for prose.

With `--split dev` it also prints, for each kind of answer, every rule's score on the
problems whose answers read as that kind, pooled over the benchmarks given: the figures the
`local` recipe's by_kind section is chosen from. Rows of other recipes found beside the harvest
(the paper's MoA and Self-MoA synthesis, `--rows`) are scored on their own problems, with the
greedy answer on those same problems. Intervals are Wilson's at 95%; `vs greedy` is the paired
difference with its normal 95% interval.

    .venv/bin/python benchmarks/choose_local.py benchmarks/results/*-dev --split dev
    .venv/bin/python benchmarks/choose_local.py benchmarks/results/*-held-out --split held-out \
        --md benchmarks/local-held-out.md --json benchmarks/local-held-out.json
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moa.batch import read_results
from moa.evals import runner
from moa.evals.registry import BENCHMARKS, benchmark_class
from moa.evals.stats import mean_interval, wilson
from moa.sandbox import SandboxLimits
from moa.strategies import constraints
from moa.strategies.agreement import most_agreed
from moa.strategies.behaviour import select_by_behaviour
from moa.strategies.finals.tool_vote import TEXT, supported
from moa.strategies.read import answer_kind, extractor
from moa.strategies.tally import mean_weight, tally
from moa.tools import canonical
from moa.types import ToolCall

KINDS = ("number", "code", "prose", "tool")
READ = extractor("number", None)


@dataclass
class Item:
    bench: str
    id: str
    texts: list[str]
    logprobs: list[float | None]
    tokens: list[int]  # input + output tokens of each answer's call
    right: list[bool]  # each answer scored
    loose: list[bool]  # IFBench's loose score (the strict one elsewhere)
    instr: list[float]  # IFBench: the share of the prompt's instructions followed (strict)
    problem: dict[str, Any] = field(repr=False)
    prompt: str = field(default="", repr=False)  # as it was put to the model
    calls: list[list[ToolCall]] = field(default_factory=list, repr=False)  # each answer's

    @property
    def kind(self) -> str:
        # a request with tools: `auto` asks its tool rule (the answers are calls, or none)
        return "tool" if self.bench == "bfcl" else answer_kind(self.texts)


def bench_of(path: Path) -> str:
    """The benchmark a results folder holds, by the start of its name (`ifeval-dev`)."""
    for name in sorted(BENCHMARKS, key=len, reverse=True):
        if path.name.startswith(name):
            return name
    raise SystemExit(f"{path}: its name should start with one of {', '.join(BENCHMARKS)}")


def problems(bench: str, split: str) -> dict[str, dict[str, Any]]:
    b = benchmark_class(bench)()
    split = split if b.splits else "all"  # GSM8K: every problem (the runs say which)
    return {str(p["id"]): p for p in runner.load_items(b, split=split, limit=None).items}


def scorer(bench: str) -> Callable[[dict[str, Any], str], tuple[bool, bool, float]]:
    """(strict, loose, the share of instructions followed): the benchmark's own scores of one
    answer (for benchmarks without instructions, all three say whether it is right)."""
    b = benchmark_class(bench)()

    def score(problem: dict[str, Any], text: str) -> tuple[bool, bool, float]:
        scored = b.score(problem, text)
        right = b.correct({**scored, "text": text})
        if "strict" not in scored:
            return right, right, float(right)
        strict = scored["strict"]
        return right, all(scored["loose"]), sum(strict) / len(strict)

    return score


def results_file(out: Path, name: str) -> Path | None:
    """The results of the recipe `name` under `out` (the newest, if its key changed)."""
    found = [
        path
        for path in (out / "runs").glob(f"{name}-*.jsonl")
        if re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{10}}\.jsonl", path.name)
    ]
    return max(found, key=lambda path: path.stat().st_mtime) if found else None


def load_items(out: Path, split: str, name: str) -> list[Item]:
    """The problems on which every one of the four answers of `name`'s run ran to its end."""
    bench = bench_of(out)
    known = problems(bench, split)
    score = scorer(bench)
    items: list[Item] = []
    bench_ = benchmark_class(bench)()
    path = results_file(out, name)
    if path is None:
        return items
    for key, record in read_results(path).items():
        calls = sorted(
            (c for c in record["trace"]["calls"] if c["role"] == "proposer"),
            key=lambda c: c["index"],
        )
        answers = [bench_.answer_text(c["text"], tool_calls(c)) for c in calls]
        if not record.get("ok") or len(calls) != 4 or not all(answers):
            continue
        problem = known[key]
        asked = bench_.prompt(problem)
        texts = [str(t) for t in answers]
        scores = [score(problem, t) for t in texts]
        items.append(
            Item(
                bench,
                key,
                texts,
                [c.get("logprob") for c in calls],
                [c["input_tokens"] + c["output_tokens"] for c in calls],
                [s[0] for s in scores],
                [s[1] for s in scores],
                [s[2] for s in scores],
                problem,
                asked if isinstance(asked, str) else "",
                [tool_calls(c) for c in calls],
            )
        )
    return items


def tool_calls(call: dict[str, Any]) -> list[ToolCall]:
    """The tool calls of a trace's call (as the trace writes them)."""
    return [ToolCall(c["id"], c["name"], c["arguments"]) for c in call.get("tool_calls") or ()]


# the rules: each returns the index of the answer it picks ----------------------------------
def vote(item: Item, temperature: float | None = None) -> int:
    reads = [READ(t) for t in item.texts]
    weights = None
    if temperature is not None:
        weights = [mean_weight(lp, temperature=temperature) for lp in item.logprobs]
    index = tally(reads, weights).index
    return 0 if index is None else index


def agreement(item: Item) -> int:
    return most_agreed(item.texts).index


def behaviour(item: Item) -> int:
    if item.bench != "humaneval":  # the strategy finds no function in the prompt: agreement
        return agreement(item)
    p = item.problem
    return select_by_behaviour(
        item.texts,
        prompt=p["prompt"],
        entry_point=p["entry_point"],
        limits=SandboxLimits(timeout_s=5),
    ).index


def call_vote(item: Item) -> int:
    """tool_vote as the rule runs: each answer's calls canonicalised (moa.tools.canonical),
    text answers one action, ties to the greedy answer."""
    index = tally([canonical(calls) if calls else TEXT for calls in item.calls]).index
    return 0 if index is None else index


def call_support(item: Item) -> int:
    """tool_vote with count: calls, as the rule runs (moa.strategies.finals.tool_vote)."""
    index = supported(item.calls)
    return call_vote(item) if index is None else index


def checks(item: Item) -> int:
    return constraints.choose(item.prompt, item.texts)


BASE: dict[str, Callable[[Item], int]] = {
    "greedy": lambda item: 0,
    "sample 1": lambda item: 1,
    "sample 2": lambda item: 2,
    "sample 3": lambda item: 3,
    "plurality": vote,
    "cisc T=1": lambda item: vote(item, 1.0),
    "cisc T=0.1": lambda item: vote(item, 0.1),
    "agreement": agreement,
    "behaviour": behaviour,
    "checks": checks,
    "call vote": call_vote,
    "call support": call_support,
}
PER_KIND = ("greedy", "plurality", "cisc T=1", "cisc T=0.1", "agreement", "behaviour", "checks")
TEXT_RULES = ("greedy", "sample 1", "sample 2", "sample 3", *PER_KIND[1:])
TOOL_RULES = ("greedy", "sample 1", "sample 2", "sample 3", "call vote", "call support")
"""The rules that apply to calls: a vote decided early picks what the full vote picks (it
stops only answers that cannot change it), so it is the `call vote` row here."""


def auto(number: str, code: str, prose: str) -> Callable[[Item], int]:
    rules = {"number": BASE[number], "code": BASE[code], "prose": BASE[prose]}
    return lambda item: rules[item.kind](item)


# statistics -------------------------------------------------------------------------------
def row(name: str, items: Sequence[Item], picks: Sequence[int], every: bool) -> dict[str, Any]:
    n = len(items)
    right = sum(it.right[k] for it, k in zip(items, picks, strict=True))
    loose = sum(it.loose[k] for it, k in zip(items, picks, strict=True))
    instr = sum(it.instr[k] for it, k in zip(items, picks, strict=True))
    lo, hi = wilson(right, n)
    diffs = [int(it.right[k]) - int(it.right[0]) for it, k in zip(items, picks, strict=True)]
    tokens = [sum(it.tokens) if every else it.tokens[k] for it, k in zip(items, picks, strict=True)]
    return {
        "rule": name,
        "n": n,
        "correct": right,
        "accuracy": right / n if n else 0.0,
        "ci": [lo, hi],
        "loose": loose / n if n else 0.0,
        "instructions": instr / n if n else 0.0,
        "vs_greedy": list(mean_interval(diffs)),
        "won": sum(1 for d in diffs if d > 0),
        "lost": sum(1 for d in diffs if d < 0),
        "tokens": sum(tokens) / n if n else 0.0,
    }


def score_rules(
    items: Sequence[Item], rules: dict[str, Callable[[Item], int]]
) -> list[dict[str, Any]]:
    out = []
    for name, rule in rules.items():
        picks = [rule(it) for it in items]
        single = name == "greedy" or name.startswith("sample")
        out.append(row(name, items, picks, every=not single))
    picks = [next((k for k in range(4) if it.right[k]), 0) for it in items]
    out.append(row("any (a perfect selector)", items, picks, every=True))
    return out


def file_rows(
    out: Path, split: str, names: Sequence[str], greedy_name: str
) -> list[dict[str, Any]]:
    """A row for each recipe run under `out` (its own answers, scored), paired with the greedy
    answer alone (the run of `greedy_name`) on the same problems. A failed run counts as a
    wrong answer (the user got none), and the row says how many failed."""
    bench = bench_of(out)
    known = problems(bench, split)
    score = scorer(bench)

    def scored(name: str) -> dict[str, tuple[bool, bool, float, int, bool]]:
        path = results_file(out, name)
        done = read_results(path) if path is not None else {}
        found = {}
        for k, r in done.items():
            if k not in known:
                continue
            ok = bool(r.get("ok"))
            marks = score(known[k], str(r.get("text") or "")) if ok else (False, False, 0.0)
            found[k] = (*marks, r.get("input_tokens", 0) + r.get("output_tokens", 0), ok)
        return found

    greedy = scored(greedy_name)
    rows = []
    for name in names:
        mine = scored(name)
        keys = [k for k in mine if k in greedy]
        n = len(keys)
        if not n:
            continue
        right = sum(mine[k][0] for k in keys)
        diffs = [int(mine[k][0]) - int(greedy[k][0]) for k in keys]
        failed = sum(1 for k in keys if not mine[k][4])
        rows.append(
            {
                "rule": name,
                "failed": failed,
                "n": n,
                "correct": right,
                "accuracy": right / n,
                "ci": list(wilson(right, n)),
                "loose": sum(mine[k][1] for k in keys) / n,
                "instructions": sum(mine[k][2] for k in keys) / n,
                "vs_greedy": list(mean_interval(diffs)),
                "won": sum(1 for d in diffs if d > 0),
                "lost": sum(1 for d in diffs if d < 0),
                "tokens": sum(mine[k][3] for k in keys) / n,
                "greedy_same_items": sum(greedy[k][0] for k in keys) / n,
            }
        )
    return rows


def table(rows: Sequence[dict[str, Any]], loose: bool) -> str:
    head = (
        "| rule | accuracy % | 95% CI | n | vs greedy (points, 95% CI) | won/lost | tokens/item |"
    )
    if loose:
        head += " loose % | instructions % |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        d = r["vs_greedy"]
        failed = r.get("failed")
        cells = [
            r["rule"] + (f" ({failed} failed, counted wrong)" if failed else ""),
            f"{100 * r['accuracy']:.1f}",
            f"{100 * r['ci'][0]:.1f}-{100 * r['ci'][1]:.1f}",
            str(r["n"]),
            f"{100 * d[0]:+.1f} ({100 * d[1]:+.1f} to {100 * d[2]:+.1f})",
            f"{r['won']}/{r['lost']}",
            f"{r['tokens']:.0f}",
        ]
        if "greedy_same_items" in r and r["rule"] != "local-greedy":
            cells[4] += f"; greedy {100 * r['greedy_same_items']:.1f}% on these"
        if loose:
            cells += [f"{100 * r['loose']:.1f}", f"{100 * r['instructions']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--split", choices=("dev", "held-out"), required=True)
    parser.add_argument(
        "--answers",
        help="the run whose four answers the rules choose from (default: local-harvest on "
        "dev, local on held-out; only problems whose four answers all ran to their end)",
    )
    parser.add_argument(
        "--auto", default="plurality/behaviour/checks", help="by_kind rules: number/code/prose"
    )
    parser.add_argument(
        "--rows",
        default="local-greedy,local,self-moa-over-local,moa-local-three",
        help="recipes whose own runs are rows, by results file name (the first is the baseline)",
    )
    parser.add_argument("--md", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    answers = args.answers or ("local-harvest" if args.split == "dev" else "local")
    number, code, prose = args.auto.split("/")
    combos = {f"auto: {number}/{code}/{prose}": auto(number, code, prose)}
    if args.split == "dev":
        for c in ("greedy", "behaviour", "agreement"):
            for p in ("greedy", "agreement", "checks"):
                combos.setdefault(f"auto: plurality/{c}/{p}", auto("plurality", c, p))
    names = args.rows.split(",")
    report: dict[str, Any] = {"split": args.split, "benchmarks": {}}
    md = [f"# The `local` recipe, {args.split} split\n"]
    pooled: list[Item] = []
    for out in args.dirs:
        bench = bench_of(out)
        loose = bench in ("ifbench", "ifeval")
        runs = file_rows(out, args.split, names, names[0])
        items = load_items(out, args.split, answers)
        pooled += items
        if bench == "bfcl":
            every = {n: BASE[n] for n in TOOL_RULES}
        else:
            every = {**{n: BASE[n] for n in TEXT_RULES}, **combos}
        rules = score_rules(items, every) if items else []
        kinds = {k: sum(1 for it in items if it.kind == k) for k in KINDS}
        report["benchmarks"][bench] = {
            "dir": str(out),
            "runs": runs,
            "kinds": kinds,
            "rules": rules,
        }
        md.append(f"## {bench}\n")
        if runs:
            md += [
                f"Each recipe's own run, against {names[0]} on the same problems:\n",
                table(runs, loose),
                "",
            ]
        if rules:
            md += [
                f"Rules after the fact on the four answers of `{answers}` ({len(items)} "
                f"problems whose four answers all ran to their end; read as {kinds}):\n",
                table(rules, loose),
                "",
            ]
    if args.split == "dev":
        md.append("## By kind of answer, pooled over the benchmarks above\n")
        report["by_kind"] = {}
        for kind in KINDS:
            mine = [it for it in pooled if it.kind == kind]
            if not mine:
                continue
            chosen = TOOL_RULES if kind == "tool" else PER_KIND
            rows = score_rules(mine, {name: BASE[name] for name in chosen})
            report["by_kind"][kind] = rows
            where = {b: n for b in BENCHMARKS if (n := sum(1 for it in mine if it.bench == b))}
            shown = table(
                rows, loose=kind == "prose" and bool(where.keys() & {"ifbench", "ifeval"})
            )
            md += [f"### {kind} ({len(mine)} problems: {where})\n", shown, ""]
    text = "\n".join(md)
    print(text)
    if args.md:
        args.md.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
