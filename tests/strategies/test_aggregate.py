"""What the aggregator is shown: numbered answers, the votes as evidence, Self-MoA-Seq rounds."""

from __future__ import annotations

import pytest
from recipes import make, script

from moa import AGGREGATE_PROMPT, FakeBackend, MoA
from moa.prompts import numbered
from moa.strategies.aggregate import SEQ_NOTE, aggregator_brief, evidence_text, seq_rounds
from moa.strategies.read import extract_number
from moa.strategies.tally import tally


def aggregate_block(prompt: str, refs: list[str]) -> str:
    """The aggregator's system text with the votes as evidence."""
    evidence = tally([extract_number(r) for r in refs])
    (system,) = aggregator_brief([], prompt, refs, evidence=evidence).render()
    return system.content


def test_votes_as_evidence_exact_text() -> None:
    refs = ["x\nAnswer: 72", "y\nAnswer: 68", "z\nAnswer: 72"]
    block = aggregate_block(AGGREGATE_PROMPT, refs)
    assert block == (
        AGGREGATE_PROMPT + "\n1. x\nAnswer: 72\n2. y\nAnswer: 68\n3. z\nAnswer: 72"
        "\n\nAgreement between the responses: their final answers are "
        "72 (responses 1, 3: 2 of 3); 68 (response 2: 1 of 3).\n"
        "The most common answer is 72. Agreement between independent responses is evidence "
        "of correctness, but a majority can be wrong: check the reasoning."
    )
    same = evidence_text(tally(["1", "1"]))
    assert same.endswith(
        "All responses agree on 1; agreement between independent responses "
        "is strong evidence, but still check the reasoning."
    )
    assert evidence_text(tally([extract_number("?")])) == ""
    prose = ["Paris is lovely.", "See Paris."]
    assert aggregate_block("P", prose) == "P\n1. Paris is lovely.\n2. See Paris."


async def test_votes_as_evidence_reach_the_aggregator() -> None:
    fake = FakeBackend()
    script(fake, "x\nAnswer: 72", "y\nAnswer: 68", "z\nAnswer: 72")
    fake.enqueue("agg", "Answer: 72")
    result = await make(fake, {"evidence": "votes"}).arun("q")
    assert result.text == "Answer: 72"
    (req,) = fake.requests("agg")
    refs = ["x\nAnswer: 72", "y\nAnswer: 68", "z\nAnswer: 72"]
    assert req.messages[0].content == aggregate_block(AGGREGATE_PROMPT, refs)
    assert req.messages[1].content == "q"


def test_numbered_answers_follow_the_prompt_or_fill_its_placeholder() -> None:
    refs = ["one", "two"]
    assert numbered(AGGREGATE_PROMPT, refs) == AGGREGATE_PROMPT + "\n1. one\n2. two"
    assert numbered("A {responses} B", refs) == "A 1. one\n2. two B"


# Self-MoA-Seq --------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 10, 23])
@pytest.mark.parametrize("window", [1, 2, 3, 5])
def test_seq_rounds_cover_everything_within_the_bound(count: int, window: int) -> None:
    rounds = seq_rounds(count, window)
    assert [i for r in rounds for i in r] == list(range(count))
    assert all(1 <= len(r) <= window for r in rounds)


@pytest.mark.parametrize("n", [1, 2, 4, 5, 9])
async def test_seq_never_shows_more_than_window_plus_one(n: int) -> None:
    fake = FakeBackend()
    window = 2
    moa = MoA(
        {
            "layers": [[{"model": "fake:s", "n": n, "temperature": 0.7}]],
            "aggregator": "fake:agg",
            "strategy": {"seq": {"window": window}},
        },
        backends={"fake": fake},
    )
    result = await moa.arun("q")
    rounds = fake.requests("agg")
    assert len(rounds) == len(seq_rounds(n, window))
    for i, req in enumerate(rounds):
        shown = req.messages[0].content
        count = shown.count("\n1. ") + sum(shown.count(f"\n{k}. ") for k in range(2, 10))
        assert count <= window + 1
        if i:  # later rounds see the running synthesis first
            assert SEQ_NOTE in shown
            assert "synthesis of " in shown.split("\n1. ", 1)[1].split("\n2. ", 1)[0]
    # the rounds are aggregator calls in their own layers; the last one streamed the answer
    aggs = [c for c in result.trace.calls if c.role == "aggregator"]
    assert [c.layer for c in aggs] == list(range(2, 2 + len(rounds)))
    assert result.text == aggs[-1].text
