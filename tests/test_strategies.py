"""Strategies on the fake backend: which calls each makes, what they are shown, what they return."""

from __future__ import annotations

from typing import Any

import pytest
from recipes import recipe

from moa import AGGREGATE_PROMPT, FakeBackend, MoA, Token
from moa.errors import RecipeError
from moa.prompts import numbered
from moa.recipe import load_recipe
from moa.strategies import Strategy
from moa.strategies.aggregate import SEQ_NOTE, aggregator_brief, evidence_text, seq_rounds
from moa.strategies.judges import RANK_PROMPT, REVIEW_PROMPT, borda, parse_choice, parse_ranking
from moa.strategies.read import extract_number, normalize_number
from moa.strategies.tally import tally


def aggregate_block(prompt: str, refs: list[str]) -> str:
    """The aggregator's system text with the votes as evidence."""
    evidence = tally([extract_number(r) for r in refs])
    (system,) = aggregator_brief([], prompt, refs, evidence=evidence).render()
    return system.content


def make(fake: FakeBackend, strategy: dict[str, Any], **extra: Any) -> MoA:
    return MoA(recipe(strategy=strategy, **extra), backends={"fake": fake})


def answers(fake: FakeBackend, *texts: str, models: str = "abc") -> None:
    for model, text in zip(models, texts, strict=True):
        fake.enqueue(model, text)


def roles(result: Any) -> list[tuple[int, str, str]]:
    return [(c.layer, c.role, c.agent) for c in result.trace.calls]


# answer extraction ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Janet sells 9 eggs.\n#### 72", "72"),
        ("so 1,234.5 in all.\nAnswer: 1,234.5", "1234.5"),
        ("She earns $18 a day.\nAnswer: $18", "18"),
        ("**Answer:** $1,234.50", "1234.5"),
        ("The answer is 42 apples.", "42"),
        ("Answer: 15 dollars\n\nCheck: 3 + 12 = 15, and 2 more", "15"),
        ("The final answer is \\boxed{1,000}.", "1000"),
        ("It has 5 cats and 3 dogs, so 8 pets in total.", "8"),
        ("Answer: -7.0", "-7"),
        ("Answer: 3/4", "0.75"),
        ("Answer:\n\n  12 cm", "12"),
        ("She answered 3 questions. In total 10 minutes.", "10"),
        ("The total is 10,000,000 grains.", "10000000"),
        ("Answer: 13 eggs remain.\nThen 13 * 2 = 26.\n\\boxed{26}", "26"),
        ("\\boxed{5} is wrong; the answer is 6", "6"),
        ("no digits at all", None),
        ("", None),
    ],
)
def test_extract_number(text: str, expected: str | None) -> None:
    assert extract_number(text) == expected


def test_normalize_number() -> None:
    assert normalize_number("$1,000.00") == "1000"
    assert normalize_number("0.50") == "0.5"
    assert normalize_number("abc") is None
    assert normalize_number("1/0") is None


# votes ---------------------------------------------------------------------------------------
def test_tally_ties_go_to_the_answer_given_first() -> None:
    t = tally(
        [extract_number(a) for a in ["Answer: 5", "Answer: 7", "Answer: 7", "Answer: 5", "nothing"]]
    )
    assert t.winner == "5" and t.index == 0 and t.votes == 2 and t.total == 5
    assert t.groups == {"5": [0, 3], "7": [1, 2]}
    assert tally([extract_number("x"), extract_number("y")]).winner is None


async def test_majority_vote_returns_the_chosen_text_without_an_aggregator_call() -> None:
    fake = FakeBackend()
    answers(fake, "a says\nAnswer: 5", "b says\nAnswer: 7", "c says\nAnswer: 7")
    moa = make(fake, {"final": "vote"})
    events = [e async for e in moa.astream("q")]
    result = events[-1].result  # type: ignore[union-attr]
    assert result.text == "b says\nAnswer: 7"
    assert fake.requests("agg") == []
    assert [(r, role) for _, r, role in [(0, *x[:2]) for x in roles(result)]] == [
        (1, "proposer")
    ] * 3
    assert any("vote: 7 with 2 of 3" in n for n in result.trace.notes)
    assert [e.text for e in events if isinstance(e, Token)] == ["b says\nAnswer: 7"]


async def test_vote_tie_breaks_by_order_and_unreadable_answers_do_not_vote() -> None:
    fake = FakeBackend()
    answers(fake, "no idea", "Answer: 3", "Answer: 4")
    result = await make(fake, {"final": "vote"}).arun("q")
    assert result.text == "Answer: 3"
    fake = FakeBackend()
    answers(fake, "no idea", "none", "nope")
    result = await make(fake, {"final": "vote"}).arun("q")
    assert result.text == "no idea"
    assert "vote: no answer could be read" in result.trace.notes


async def test_a_vote_on_prose_can_fall_back_to_the_synthesis() -> None:
    fake = FakeBackend()
    answers(fake, "a poem", "another poem", "Answer: 3")
    fake.enqueue("agg", "the synthesis")
    result = await make(fake, {"final": "vote", "unread": "synthesize"}).arun("q")
    assert result.text == "Answer: 3"  # one readable answer is a vote
    assert fake.requests("agg") == []
    answers(fake, "a poem", "another poem", "a third")
    result = await make(fake, {"final": "vote", "unread": "synthesize"}).arun("q")
    assert result.text == "the synthesis"
    (call,) = fake.requests("agg")
    assert call.messages[0].content == numbered(
        AGGREGATE_PROMPT, ["a poem", "another poem", "a third"]
    )
    assert "vote: no answer could be read; synthesising" in result.trace.notes
    with pytest.raises(RecipeError, match="unread is not an option of final: synthesize"):
        load_recipe(
            {"layers": [["fake:a"]], "aggregator": "fake:b", "strategy": {"unread": "synthesize"}}
        )


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


def test_strict_answers_ignore_numbers_in_passing() -> None:
    read = Strategy(answer="strict").read()
    assert read("Founded in 1969, it has 3 campuses.") is None
    assert read("So...\nAnswer: 1,200") == "1200"
    assert read("The answer is \\boxed{7}.") == "7"
    assert Strategy().read()("Founded in 1969, it has 3 campuses.") == "3"


async def test_votes_as_evidence_reach_the_aggregator() -> None:
    fake = FakeBackend()
    answers(fake, "x\nAnswer: 72", "y\nAnswer: 68", "z\nAnswer: 72")
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


# ranker --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", 1),
        ("Response 3 is the best.", 2),
        ("**1**", 0),
        ("I pick 7, no wait, 2", 1),
        ("none of them", None),
        ("0", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_choice(text: str | None, expected: int | None) -> None:
    assert parse_choice(text, 3) == expected


async def test_ranker_picks_by_number() -> None:
    fake = FakeBackend()
    answers(fake, "Answer: 1", "Answer: 2", "Answer: 3")
    fake.enqueue("agg", "The best is response 3.")
    result = await make(fake, {"final": "rank"}).arun("q")
    assert result.text == "Answer: 3"
    (req,) = fake.requests("agg")
    assert req.messages[0].content == RANK_PROMPT + "\n1. Answer: 1\n2. Answer: 2\n3. Answer: 3"
    assert req.settings.temperature == 0 and req.settings.max_tokens == 16
    judge = [c for c in result.trace.calls if c.role == "judge"]
    assert len(judge) == 1 and judge[0].layer == 2 and judge[0].text == "The best is response 3."


async def test_ranker_bad_output_falls_back_to_the_vote() -> None:
    fake = FakeBackend()
    answers(fake, "Answer: 1", "Answer: 2", "Answer: 2")
    fake.enqueue("agg", "They are all lovely.")
    result = await make(fake, {"final": "rank"}).arun("q")
    assert result.text == "Answer: 2"
    assert any("could not be read" in n and "answer 2 by vote" in n for n in result.trace.notes)


async def test_ranker_with_its_own_judge() -> None:
    fake = FakeBackend()
    answers(fake, "A", "B", "C")
    fake.enqueue("j", "1")
    result = await make(fake, {"final": "rank", "judge": "fake:j"}).arun("q")
    assert result.text == "A"
    (req,) = fake.requests("j")
    assert req.settings.temperature == 0 and req.settings.max_tokens == 16
    assert fake.requests("agg") == []


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


# sparse selection, council, early stop, filters ----------------------------------------------
def test_parse_ranking_and_borda() -> None:
    assert parse_ranking("2 > 3 > 1", 3) == [1, 2, 0]
    assert parse_ranking("3", 3) == [2, 0, 1]
    assert parse_ranking("Response 9 then 2", 3) == [1, 0, 2]
    assert parse_ranking("none", 3) is None
    assert borda([[0, 1, 2], [1, 0, 2], [1, 2, 0]], 3) == [1, 0, 2]
    assert borda([[0, 1], [1, 0]], 2) == [0, 1]  # a tie: the lower index first


async def test_sparse_selection_forwards_the_judges_top_k() -> None:
    fake = FakeBackend()
    answers(fake, "A", "B", "C")
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
    answers(fake, "A", "B", "C")
    fake.enqueue("j", "no idea")
    fake.enqueue("agg", "final")
    result = await make(fake, {"select": {"top_k": 1, "judge": "fake:j"}}).arun("q")
    assert fake.requests("j")  # the named judge was asked, not the aggregator
    (final,) = fake.requests("agg")
    assert final.messages[0].content.endswith("\n1. A")
    assert any("could not be read" in n for n in result.trace.notes)


async def test_council_reviews_rotate_and_reorder() -> None:
    fake = FakeBackend()
    answers(fake, "A", "B", "C")
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
    answers(fake, "Answer: 4", "Answer: 4", "Answer: 5")
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
    answers(fake, "Answer: 4", "Answer: 4", "Answer: 5")
    moa = make(
        fake,
        {"early_stop": {"agree": 1.0}},
        layers=[["fake:a", "fake:b", "fake:c"], ["fake:d"]],
    )
    await moa.arun("q")
    assert len(fake.requests("d")) == 1


async def test_early_stop_can_skip_the_aggregator() -> None:
    fake = FakeBackend()
    answers(fake, "one\nAnswer: 4", "two\nAnswer: 4", "three\nAnswer: 4")
    rule = {"early_stop": {"agree": 1.0, "skip_aggregator": True}}
    result = await make(fake, rule).arun("q")
    assert result.text == "one\nAnswer: 4" and fake.requests("agg") == []
    fake = FakeBackend()
    answers(fake, "Answer: 4", "Answer: 4", "Answer: 5")
    fake.enqueue("agg", "final")
    assert (await make(fake, rule).arun("q")).text == "final"


async def test_drop_unanswered() -> None:
    fake = FakeBackend()
    answers(fake, "rambling", "Answer: 2", "Answer: 3")
    fake.enqueue("agg", "final")
    result = await make(fake, {"drop_unanswered": True}).arun("q")
    (req,) = fake.requests("agg")
    assert req.messages[0].content == AGGREGATE_PROMPT + "\n1. Answer: 2\n2. Answer: 3"
    assert result.trace.notes


async def test_single_model_baseline_and_default_strategy_untouched() -> None:
    fake = FakeBackend()
    fake.enqueue("agg", "alone")
    result = await MoA({"layers": [], "aggregator": "fake:agg"}, backends={"fake": fake}).arun("q")
    assert result.text == "alone" and [c.role for c in result.trace.calls] == ["aggregator"]
    vote = MoA(
        {"layers": [], "aggregator": "fake:agg", "strategy": {"final": "vote"}},
        backends={"fake": fake},
    )
    assert (await vote.arun("q")).text.startswith("[agg]")  # no proposals: the model answers


# the recipe field ----------------------------------------------------------------------------
def test_strategy_errors_name_the_field() -> None:
    base = {"layers": [["fake:a"]], "aggregator": "fake:b"}
    with pytest.raises(RecipeError, match=r"strategy\.prune\.top_k"):
        load_recipe({**base, "strategy": {"prune": {"top_k": 0}}})
    with pytest.raises(RecipeError, match=r"strategy\.prune\.top_k"):  # its old name
        load_recipe({**base, "strategy": {"select": {"top_k": 0}}})
    with pytest.raises(RecipeError, match=r"strategy\.final: unknown final rule 'best'"):
        load_recipe({**base, "strategy": {"final": "best"}})
    with pytest.raises(RecipeError, match=r"strategy\.final: rank: judge: .*unknown provider"):
        load_recipe({**base, "strategy": {"final": {"rule": "rank", "judge": "nowhere:x"}}})
    with pytest.raises(RecipeError, match=r"strategy\.final: rank: judge: .*unknown provider"):
        load_recipe({**base, "strategy": {"final": "rank", "judge": "nowhere:x"}})  # old form
    with pytest.raises(RecipeError, match=r"judge is not an option of final: synthesize"):
        load_recipe({**base, "strategy": {"judge": "fake:j"}})
    with pytest.raises(RecipeError, match=r"strategy\.answer_pattern"):
        load_recipe({**base, "strategy": {"answer_pattern": "("}})
    with pytest.raises(RecipeError, match=r"strategy: seq aggregates in rounds"):
        load_recipe({**base, "strategy": {"final": "vote", "seq": {}}})
    assert load_recipe({**base, "strategy": None}).strategy == Strategy()


def test_answer_pattern() -> None:
    s = Strategy(answer="text", answer_pattern=r"^Verdict:\s*(\w+)")
    read = s.read()
    assert read("blah\nVerdict: Yes\n") == "yes"
    assert read("nothing") is None
