"""What happens to a layer's answers before the next layer: council review, pruning, early stop, dropping."""

from __future__ import annotations

from recipes import make, script

from moa import AGGREGATE_PROMPT, FakeBackend
from moa.strategies.judges import (
    REVIEW_PROMPT,
)


async def test_sparse_selection_forwards_the_judges_top_k() -> None:
    fake = FakeBackend()
    script(fake, "A", "B", "C")
    fake.enqueue("agg", "3 > 1 > 2", "final")
    result = await make(fake, {"select": {"top_k": 2}}).arun("q")
    judge, final = fake.requests("agg")
    assert judge.messages[0].content == REVIEW_PROMPT + "\n1. A\n2. B\n3. C"
    assert judge.settings.temperature == 0 and judge.settings.max_tokens == 32
    assert final.messages[0].content == AGGREGATE_PROMPT + "\n1. C\n2. A"
    assert result.text == "final"
    assert [c.role for c in result.trace.calls] == ["proposer"] * 3 + ["judge", "aggregator"]


async def test_sparse_selection_unreadable_judge_keeps_the_first() -> None:
    fake = FakeBackend()
    script(fake, "A", "B", "C")
    fake.enqueue("j", "no idea")
    fake.enqueue("agg", "final")
    result = await make(fake, {"select": {"top_k": 1, "judge": "fake:j"}}).arun("q")
    assert fake.requests("j")  # the named judge was asked, not the aggregator
    (final,) = fake.requests("agg")
    assert final.messages[0].content.endswith("\n1. A")
    assert any("could not be read" in n for n in result.trace.notes)


async def test_council_reviews_rotate_and_reorder() -> None:
    fake = FakeBackend()
    script(fake, "A", "B", "C")
    # each reviewer sees a rotated order; all put the answer "C" first
    fake.enqueue("a", "3 > 1 > 2")  # order A B C: C, A, B
    fake.enqueue("b", "2 > 3 > 1")  # order B C A: C, A, B
    fake.enqueue("c", "1 > 2 > 3")  # order C A B: C, A, B
    fake.enqueue("agg", "final")
    result = await make(fake, {"council": {"top_k": 2}}).arun("q")
    reviews = [fake.requests(m)[1] for m in "abc"]
    assert reviews[0].messages[0].content == REVIEW_PROMPT + "\n1. A\n2. B\n3. C"
    assert reviews[1].messages[0].content == REVIEW_PROMPT + "\n1. B\n2. C\n3. A"
    assert reviews[2].messages[0].content == REVIEW_PROMPT + "\n1. C\n2. A\n3. B"
    (final,) = fake.requests("agg")
    assert final.messages[0].content == (
        AGGREGATE_PROMPT + "\n1. C\n2. A\n\nPeer review: the agents ranked these responses "
        "anonymously, best first: 3 > 1 > 2 (by total score of 3 reviewers). Responses are "
        "numbered in that order."
    )
    judges = [c for c in result.trace.calls if c.role == "judge"]
    assert len(judges) == 3 and {c.layer for c in judges} == {1}


async def test_early_stop_skips_later_layers_when_answers_agree() -> None:
    fake = FakeBackend()
    script(fake, "Answer: 4", "Answer: 4", "Answer: 5")
    fake.enqueue("agg", "final")
    moa = make(
        fake,
        {"early_stop": {"agree": 0.6}},
        layers=[["fake:a", "fake:b", "fake:c"], ["fake:d", "fake:e"]],
    )
    result = await moa.arun("q")
    assert fake.requests("d") == [] and fake.requests("e") == []
    assert result.text == "final"
    assert any(
        "early stop after layer 1: 2 of 3 answers agree on 4" in n for n in result.trace.notes
    )


async def test_early_stop_does_not_fire_below_its_threshold() -> None:
    fake = FakeBackend()
    script(fake, "Answer: 4", "Answer: 4", "Answer: 5")
    moa = make(
        fake,
        {"early_stop": {"agree": 1.0}},
        layers=[["fake:a", "fake:b", "fake:c"], ["fake:d"]],
    )
    await moa.arun("q")
    assert len(fake.requests("d")) == 1


async def test_early_stop_can_skip_the_aggregator() -> None:
    fake = FakeBackend()
    script(fake, "one\nAnswer: 4", "two\nAnswer: 4", "three\nAnswer: 4")
    rule = {"early_stop": {"agree": 1.0, "skip_aggregator": True}}
    result = await make(fake, rule).arun("q")
    assert result.text == "one\nAnswer: 4" and fake.requests("agg") == []
    fake = FakeBackend()
    script(fake, "Answer: 4", "Answer: 4", "Answer: 5")
    fake.enqueue("agg", "final")
    assert (await make(fake, rule).arun("q")).text == "final"


async def test_drop_unanswered() -> None:
    fake = FakeBackend()
    script(fake, "rambling", "Answer: 2", "Answer: 3")
    fake.enqueue("agg", "final")
    result = await make(fake, {"drop_unanswered": True}).arun("q")
    (req,) = fake.requests("agg")
    assert req.messages[0].content == AGGREGATE_PROMPT + "\n1. Answer: 2\n2. Answer: 3"
    assert result.trace.notes
