"""The evaluation shape: benchmarks registered by name, `moa eval NAME` made from a benchmark's
class, one error path (exit 2 for configuration, 1 for a failed run, URLs redacted), and cost
counted without a cache when there is none."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
import typer
from typer.testing import CliRunner

from moa import FakeBackend
from moa.errors import ConfigError
from moa.evals import registry
from moa.evals.benchmark import Benchmark, Items, window
from moa.evals.cli import app, command_for
from moa.evals.harness import Harness
from moa.evals.runner import evaluate
from moa.recipe import load_recipe
from moa.types import MessagesLike

ECHO = {"name": "echo", "layers": [], "aggregator": {"model": "fake:echo", "temperature": 0}}


@dataclass
class Trivia(Benchmark):
    """Trivia: does the answer end with the right word?"""

    name: ClassVar[str] = "trivia"
    title: ClassVar[str] = "Trivia"
    kinds: ClassVar[tuple[str, ...]] = ("alone", "recipe")
    splits: ClassVar[tuple[str, ...]] = ("dev", "held-out", "all")

    suffix: str = field(default="", metadata={"help": "Said after every question."})

    def load(self, data: Path | None, *, split: str, limit: int | None, offset: int) -> Items:
        words = ["apple", "pear", "plum", "fig"]
        items = [
            {"id": str(i), "word": w} for i, w in enumerate(words) if split != "dev" or i % 2 == 0
        ]
        return Items(window(items, limit, offset), {"words": len(words)})

    def prompt(self, item: dict[str, Any]) -> MessagesLike:
        return f"Say {item['word']}{self.suffix}"

    def score(self, item: dict[str, Any], text: str | None) -> dict[str, Any]:
        return {"correct": (text or "").endswith(item["word"])}


def test_every_registered_benchmark_resolves_to_its_class() -> None:
    for name in registry.BENCHMARKS:
        cls = registry.benchmark_class(name)
        assert issubclass(cls, Benchmark) and cls.name == name
    with pytest.raises(ConfigError, match=r"unknown benchmark 'ifevals'; did you mean 'ifeval'"):
        registry.benchmark_class("ifevals")


async def test_a_benchmark_is_one_class_the_runner_runs(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.respond("echo", lambda r: r.messages[-1].content)
    h = Harness(out_dir=tmp_path, cache=False, backends={"fake": fake}, progress=False, log=print)
    report = await evaluate(Trivia(suffix="!"), [ECHO], h, split="all")
    await h.aclose()
    (row,) = report.rows  # 'alone' of a recipe without layers is the recipe itself: one row
    assert (row["correct"], row["n"]) == (0, 4)  # "Say apple!" does not end with "apple"
    assert report.meta == {
        "benchmark": "trivia",
        "split": "all",
        "items": 4,
        "offset": 0,
        "words": 4,
    }
    assert report.title == "Trivia (all): accuracy on 4 items (offset 0)"


def test_its_command_is_made_from_the_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.BENCHMARKS, "trivia", f"{__name__}:Trivia")
    one = typer.Typer()
    one.command("trivia")(command_for("trivia"))
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    help = runner.invoke(one, ["--help"], terminal_width=200)
    assert "--suffix" in help.output and "--split" in help.output and "--variants" in help.output
    assert "Trivia: does the answer end with the right word?" in help.output
    args = ["-r", "fake", "--split", "dev", "--suffix", "", "--no-progress"]
    result = runner.invoke(one, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Trivia (dev)" in result.output
    bad = runner.invoke(one, [*args, "--variants", "vote"])
    assert bad.exit_code == 2 and "unknown variant 'vote'; use alone, recipe" in bad.output


def test_every_command_takes_prices() -> None:
    runner = CliRunner()
    for name in [*registry.BENCHMARKS, "collaborativeness"]:
        shown = runner.invoke(app, [name, "--help"], terminal_width=200).output
        assert "--prices" in shown and "--report-only" in shown, name


def test_failed_items_exit_1_and_urls_are_redacted(tmp_path: Path) -> None:
    runner = CliRunner()
    url = "http://user:pw-0123456789@127.0.0.1:9/v1?token=tok-0123456789"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"layers: []\naggregator: {{model: 'vllm:m@{url}', temperature: 0}}\n"
        "retry: {attempts: 1}\ntimeout: 2\n"
    )
    common = ["-r", str(recipe), "--limit", "1", "--no-progress", "--no-cache"]
    result = runner.invoke(app, ["gsm8k", *common, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1, result.output  # a failed run, not a configuration mistake
    assert "failed" in result.output and "pw-0123456789" not in result.output
    assert "tok-0123456789" not in result.output
    bad = runner.invoke(app, ["gsm8k", *common, "--prompt", "{nope}", "--out", str(tmp_path / "p")])
    assert bad.exit_code == 2 and "--prompt" in bad.output


async def test_cost_is_counted_without_a_cache_and_without_a_store(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.respond("echo", "Answer: 1")
    h = Harness(out_dir=tmp_path, cache=False, backends={"fake": fake}, progress=False)
    assert h.store is None and not (tmp_path / "cache.sqlite3").exists()
    moa = h.moa(load_recipe(ECHO))
    for _ in range(2):
        _, cost, _ = await h.answer(moa, "hi")
        assert (cost.calls, cost.cached_calls) == (1, 0) and cost.output_tokens > 0
    assert len(fake.calls) == 2  # nothing kept, nothing reused
    await h.aclose()
