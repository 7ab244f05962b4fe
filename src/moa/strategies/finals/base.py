"""A final rule: how one answer is made of the last layer's answers, with its own options.

A rule is a small pydantic model: its fields are its options (`extra="forbid"`, so a field on
the wrong rule is an error that names the rule), `answer` makes the decision, and `settled`
is its optional early decision while the last layer still runs. Rules are registered by name
(`moa.strategies.finals.registry`); a recipe names one in `strategy.final`:

    final: vote                                   # the name alone: default options
    final: {rule: vote, weights: confidence}      # with options
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SerializationInfo,
    ValidationError,
    WrapSerializer,
)

from moa.strategies.base import Answers, StepContext
from moa.strategies.judges import JudgeRef
from moa.strategies.read import Reader
from moa.trace import Call

__all__ = ["RULES", "FinalRule", "JudgedRule", "RuleField", "dump_rule", "parse_rule", "register"]


class FinalRule(BaseModel):
    """The base of every final rule. Subclasses set `name` and add their options as fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str] = ""

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        """The final answer, chosen from `answers` (noted in the trace); None: the aggregator
        synthesises them."""
        raise NotImplementedError

    def settled(self, ctx: StepContext, calls: Sequence[Call], read: Reader) -> str | None:
        """While the last layer runs (`calls`: its records; those still running have neither
        text nor error): why the answers still running can stop. None: keep going."""
        return None

    def judges(self) -> tuple[str, ...]:
        """The models this rule calls besides the recipe's agents (checked before a run)."""
        return ()

    def with_judges(self, rename: Callable[[str], str]) -> Self:
        """The same rule with each judge's model reference renamed (`--dry-run`)."""
        return self

    @property
    def logprobs(self) -> bool:
        """Whether the last layer's answers need their tokens' log-probabilities."""
        return False

    @property
    def start(self) -> int | None:
        """How many of the last layer's agents start at once (None: all)."""
        return None

    @property
    def tool_start(self) -> int | None:
        """The same where the request gives tools."""
        return self.start

    @property
    def chooses(self) -> bool:
        """Whether the rule picks one of the last layer's answers as it is (no synthesis).
        Where a request gives tools or a response format, the last layer's agents then act
        (they get them, and the rule picks among their calls); else the aggregator acts."""
        return True

    def tool_rule(self) -> FinalRule | None:
        """The rule that picks among answers of which some are tool calls (`pick`); None:
        `tool_vote` with its defaults."""
        return None

    async def pick(self, ctx: StepContext, answers: Answers, read: Reader) -> int | None:
        """The index of the chosen answer, tool calls included; None: none of the calls, the
        text answers decide (by `answer`). By default the answer whose text `answer` gives."""
        text = await self.answer(ctx, answers, read)
        return next((i for i, t in enumerate(answers.texts) if t == text), None)


class JudgedRule(FinalRule):
    """A rule that asks a judge: its model (None: the aggregator's, at temperature 0)."""

    judge: JudgeRef = None

    def judges(self) -> tuple[str, ...]:
        return (self.judge,) if self.judge else ()

    def with_judges(self, rename: Callable[[str], str]) -> Self:
        return self.model_copy(update={"judge": rename(self.judge)}) if self.judge else self


RULES: dict[str, type[FinalRule]] = {}
"""Every final rule by name; `registry` fills it with the built-in ones."""


def register(rule: type[FinalRule]) -> type[FinalRule]:
    """Add a rule to the registry (usable as a class decorator); its name must be new."""
    if not rule.name or rule.name in RULES:
        raise ValueError(f"a final rule needs a new name, got {rule.name!r}")
    RULES[rule.name] = rule
    return rule


def _problem(rule: str, exc: ValidationError, cls: type[FinalRule]) -> str:
    err = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        options = ", ".join(cls.model_fields) or "none"
        return f"{field!r} is not an option of the {rule} rule (its options: {options})"
    problem = err["msg"].removeprefix("Value error, ")
    if "input" in err and not isinstance(err["input"], (dict, list)):
        problem += f" (got {err['input']!r})"
    return f"{rule}: {field}: {problem}" if field else f"{rule}: {problem}"


def parse_rule(value: Any) -> FinalRule:
    """A rule from a recipe: its name, or a mapping with `rule` and its options."""
    if isinstance(value, FinalRule):
        return value
    if isinstance(value, str):
        value = {"rule": value}
    if not isinstance(value, Mapping):
        raise ValueError("a final rule is a name, or a mapping with 'rule' and its options")
    options = dict(value)
    name = options.pop("rule", None)
    known = ", ".join(sorted(RULES))
    if not isinstance(name, str):
        raise ValueError(f"a final rule needs 'rule': one of {known}")
    cls = RULES.get(name)
    if cls is None:
        raise ValueError(f"unknown final rule {name!r} (known: {known})")
    try:
        return cls.model_validate(options)
    except ValidationError as exc:
        raise ValueError(_problem(name, exc, cls)) from None


def dump_rule(rule: FinalRule, **kwargs: Any) -> dict[str, Any]:
    """A rule as a recipe writes it: `rule` and the options (`model_dump`'s arguments apply)."""
    return {"rule": rule.name, **rule.model_dump(**kwargs)}


def _serialize(value: FinalRule, handler: Any, info: SerializationInfo) -> dict[str, Any]:
    return dump_rule(
        value,
        mode=info.mode,
        exclude_defaults=info.exclude_defaults,
        exclude_none=info.exclude_none,
        exclude_unset=info.exclude_unset,
    )


RuleField = Annotated[FinalRule, BeforeValidator(parse_rule), WrapSerializer(_serialize)]
"""A field that holds a final rule: read with `parse_rule`, written with `dump_rule`."""
