"""How a recipe turns its layers' answers into one answer: the `strategy:` section.

    strategy:
      final: synthesize        # the final rule, by name or {rule: NAME, ...its options}
                               # (moa.strategies.finals: synthesize, vote, rank, first,
                               #  agreement, usc, behaviour, auto)
      evidence: votes          # show the aggregator how the answers agree
      seq: {window: 3}         # Self-MoA-Seq: aggregate in rounds, 3 new answers a round
      prune: {top_k: 2}        # sparse MoA: a judge forwards the best 2 answers of a layer
      council: {}              # agents rank each other's anonymised answers first
      early_stop: {agree: 1.0, skip_aggregator: true}
      answer: number           # how final answers are read for votes and agreement

Recipes written before the rules had their own options still load: a validator rewrites the
old spellings (`final: select` with `select_by`, `by_kind`, `weights`, `weight_temperature`,
`decide_early`, `unread`, `judge`, `judge_max_tokens`, `rank_prompt`, and `select:` for the
pruning judge) into the rules that use them. `moa.strategies.steps` runs the section.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from moa.strategies.finals import RuleField
from moa.strategies.finals.synthesize import Synthesize
from moa.strategies.judges import REVIEW_PROMPT, JudgeRef
from moa.strategies.read import Reader, extractor

__all__ = ["Council", "Prune", "Seq", "StopLayers", "Strategy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prune(_Strict):
    """Sparse selection: a judge ranks a layer's answers; only the top `top_k` go on."""

    top_k: int = Field(default=2, ge=1)
    judge: JudgeRef = None
    max_tokens: int = Field(default=32, gt=0)


class Council(_Strict):
    """LLM-Council review: each agent of the layer ranks the anonymised answers (its own among
    them); the answers go on in the order of their total (Borda) score, the review shown to
    the aggregator. `top_k` keeps only the best ones."""

    top_k: int | None = Field(default=None, ge=1)
    max_tokens: int = Field(default=32, gt=0)


class Seq(_Strict):
    """Self-MoA-Seq: aggregate `window` new answers a round, with the running synthesis."""

    window: int = Field(default=3, ge=1)


class StopLayers(_Strict):
    """Stop adding layers once at least `agree` of a layer's answers give the same final
    answer (and there are `min_answers`). `skip_aggregator` also skips the aggregator then,
    returning the agreed answer."""

    agree: float = Field(default=1.0, gt=0, le=1)
    min_answers: int = Field(default=2, ge=1)
    skip_aggregator: bool = False


_VOTE_OPTIONS = ("weights", "weight_temperature", "decide_early", "unread")
_JUDGE_OPTIONS = {"judge": "judge", "judge_max_tokens": "max_tokens"}
_LEGACY = (*_VOTE_OPTIONS, *_JUDGE_OPTIONS, "rank_prompt", "select_by", "by_kind")


def _legacy_rule(name: Any, old: Mapping[str, Any], used: set[str]) -> Any:
    """One rule named the old way, with the old top-level options that belong to it (noted in
    `used`)."""
    if not isinstance(name, str):
        return name
    moved: dict[str, str] = {}  # old key -> the rule's option
    if name == "vote":
        moved = {k: k for k in _VOTE_OPTIONS}
    elif name in ("rank", "usc"):
        moved = dict(_JUDGE_OPTIONS) | ({"rank_prompt": "prompt"} if name == "rank" else {})
    rule: dict[str, Any] = {"rule": name}
    for key, option in moved.items():
        if key in old:
            rule[option] = old[key]
            used.add(key)
    if name == "first" and "decide_early" in old:
        rule["decide_early"] = True
        used.add("decide_early")
    return rule


def _rewrite_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """The section with the spellings of older recipes rewritten into the rules' options."""
    old = {k: data.pop(k) for k in _LEGACY if k in data}
    if isinstance(data.get("select"), Mapping):  # the pruning judge was called `select`
        if "prune" in data:
            raise ValueError("give the pruning judge as 'prune' (its old name: 'select'), not both")
        data["prune"] = data.pop("select")
    final = data.get("final", "synthesize")
    if not isinstance(final, str):
        if old:
            raise ValueError(
                f"{', '.join(old)}: a final rule's options go inside 'final' "
                "({rule: NAME, ...}), not beside it"
            )
        return data
    if not old and final != "select":
        return data
    used: set[str] = set()
    if final == "select":
        final = old.get("select_by", "agreement")
        used.add("select_by")
    if final == "auto":
        kinds = old.get("by_kind") or {}
        used.add("by_kind")
        if not isinstance(kinds, Mapping):
            raise ValueError("by_kind: expected a mapping of kinds to rules")
        if extra := set(kinds) - {"number", "code", "prose"}:
            raise ValueError(f"by_kind: unknown kind {sorted(extra)[0]!r} (number, code, prose)")
        defaults = {"number": "vote", "code": "behaviour", "prose": "agreement"}
        rule = {"rule": "auto"}
        for kind, default in defaults.items():
            rule[kind] = _legacy_rule(kinds.get(kind, default), old, used)
        data["final"] = rule
    else:
        data["final"] = _legacy_rule(final, old, used)
    if unused := [k for k in old if k not in used]:
        raise ValueError(f"{unused[0]} is not an option of final: {final}")
    return data


class Strategy(_Strict):
    """The `strategy:` section of a recipe. Every part is optional; the default is the paper's
    MoA."""

    final: RuleField = Synthesize()
    evidence: Literal["none", "votes"] = "none"
    seq: Seq | None = None
    prune: Prune | None = None
    council: Council | None = None
    early_stop: StopLayers | None = None
    drop_unanswered: bool = False
    """Drop answers with no readable final answer (keeping at least one)."""
    answer: Literal["number", "strict", "text"] = "number"
    """How a final answer is read: `number` (an answer line, else the last number), `strict`
    (an explicit answer line or \\boxed{} only: prose gives no vote), `text` (the last line)."""
    answer_pattern: str | None = None
    """A regex whose first group is the final answer, instead of the `answer` reader."""
    review_prompt: str = REVIEW_PROMPT
    """The prompt of the pruning judge and of council reviewers."""

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _rewrite_legacy(dict(data)) if isinstance(data, Mapping) else data

    @field_validator("answer_pattern")
    @classmethod
    def _valid_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Strategy:
        if self.seq is not None and self.final.name != "synthesize":
            raise ValueError(
                f"seq aggregates in rounds; it needs final: synthesize, not {self.final.name}"
            )
        return self

    def read(self) -> Reader:
        """The function that reads a final answer out of a response."""
        return extractor(self.answer, self.answer_pattern)

    def judges(self) -> list[str]:
        """The judge models the strategy names (None in a field: the aggregator judges)."""
        pruner = self.prune.judge if self.prune else None
        return list(dict.fromkeys([*self.final.judges(), *([pruner] if pruner else [])]))

    def with_judges(self, rename: Callable[[str], str]) -> Strategy:
        """The same strategy with every judge's model reference renamed (`--dry-run`)."""
        update: dict[str, Any] = {"final": self.final.with_judges(rename)}
        if self.prune and self.prune.judge:
            update["prune"] = self.prune.model_copy(update={"judge": rename(self.prune.judge)})
        return self.model_copy(update=update)
