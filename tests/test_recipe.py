"""Recipes load from YAML, TOML, JSON and Python; errors name the file, the field and the line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from moa import FakeBackend, MoA
from moa.agent import Agent
from moa.errors import ConfigError, MissingKeyError, ModelRefError, RecipeError
from moa.plan import compile_recipe
from moa.providers import ModelRef, parse_ref
from moa.recipe import AGGREGATE_PROMPT, Recipe, builtin_names, load_recipe

SIMPLE = """\
# one layer of three proposers, then the aggregator (MoA-Lite)
layers:
  - [together:meta-llama/Llama-3.3-70B-Instruct-Turbo, together:Qwen/Qwen2.5-72B-Instruct-Turbo, together:deepseek-ai/DeepSeek-V3]
aggregator: together:Qwen/Qwen2.5-72B-Instruct-Turbo
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_simplest_yaml_recipe(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, "lite.yaml", SIMPLE))
    assert recipe.name == "lite"
    assert [a.model for a in recipe.layers[0].agents] == [
        "together:meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "together:Qwen/Qwen2.5-72B-Instruct-Turbo",
        "together:deepseek-ai/DeepSeek-V3",
    ]
    assert recipe.aggregator.model == "together:Qwen/Qwen2.5-72B-Instruct-Turbo"
    assert recipe.prompt == AGGREGATE_PROMPT
    assert recipe.layers[0].quorum is None


def test_rich_forms_in_the_same_places(tmp_path: Path) -> None:
    text = """\
layers:
  - agents:
      - {model: "openai:gpt-4o-mini", temperature: 0.2, max_tokens: 100, seed: 1}
      - ollama:llama3.2
    quorum: 1
    grace: 2.5
aggregator: {model: "openai:gpt-4o", fallbacks: ["openai:gpt-4o-mini"]}
prompt: "Answers:\\n{responses}"
"""
    recipe = load_recipe(write(tmp_path, "rich.yml", text))
    agent = recipe.layers[0].agents[0]
    assert (agent.temperature, agent.max_tokens, agent.seed) == (0.2, 100, 1)
    assert recipe.layers[0].grace == 2.5
    assert recipe.aggregator.fallbacks == ("openai:gpt-4o-mini",)


def test_toml_and_json_and_dict(tmp_path: Path) -> None:
    toml = write(
        tmp_path,
        "r.toml",
        'aggregator = "fake:agg"\nlayers = [["fake:a", "fake:b"]]\n',
    )
    json_file = write(tmp_path, "r.json", '{"aggregator": "fake:agg", "layers": [["fake:a"]]}')
    assert load_recipe(toml).layers[0].size == 2
    assert load_recipe(json_file).aggregator.model == "fake:agg"
    assert load_recipe({"aggregator": "fake:x", "layers": []}).layers == ()


def test_empty_layers_is_valid() -> None:
    assert compile_recipe({"layers": [], "aggregator": "fake:x"}).models == ("fake:x",)


def test_error_names_file_field_and_line(tmp_path: Path) -> None:
    text = """\
layers:
  - agents:
      - fake:a
      - {model: fake:b, temperature: 5}
aggregator: fake:agg
"""
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    err = info.value
    assert err.source == str(path)
    assert err.field == "layers.0.agents.1.temperature"
    assert "less than or equal to 2" in str(err) and "(got 5)" in str(err)
    assert "[line 4]" in str(err)


def test_error_on_shorthand_agent_points_at_its_line(tmp_path: Path) -> None:
    text = "layers:\n  - [fake:a, nope:b]\naggregator: fake:agg\n"
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, "bad.yaml", text))
    assert info.value.field == "layers.0.agents.1.model"
    assert "unknown provider 'nope'" in str(info.value)
    assert "[line 2]" in str(info.value)


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"layers": []}, "aggregator", "required"),
        ({"aggregator": "fake:a", "layer": []}, "layer", "unknown field"),
        ({"aggregator": "fake:a", "layers": [{"agents": []}]}, "layers.0.agents", "at least 1"),
        (
            {"aggregator": "fake:a", "layers": [{"agents": ["fake:b"], "quorum": 2}]},
            "layers.0",
            "quorum 2 is more than the layer's 1 agents",
        ),
        ({"aggregator": "gpt-4o"}, "aggregator.model", "PROVIDER:MODEL"),
        (
            {"aggregator": "fake:a", "proposer_defaults": {"temp": 1}},
            "proposer_defaults.temp",
            "unknown field",
        ),
        ({"aggregator": "opnai:gpt-4o"}, "aggregator.model", "did you mean 'openai'"),
    ],
)
def test_invalid_recipes(data: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(data)
    assert info.value.field == field
    assert words in str(info.value)


def test_bad_syntax_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, "x.yaml", "layers: [\n"))
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(write(tmp_path, "x.toml", "layers = \n"))
    with pytest.raises(RecipeError, match=r"no built-in recipe and no file.*local"):
        load_recipe("no-such-recipe")
    with pytest.raises(RecipeError, match="must be a mapping"):
        load_recipe(write(tmp_path, "list.yaml", "- a\n- b\n"))


def test_builtin_recipes_all_load() -> None:
    names = builtin_names()
    for required in ("local", "moa-lite", "moa", "self-moa", "self-moa-local", "fake"):
        assert required in names
    for name in names:
        recipe = load_recipe(name)
        assert isinstance(recipe, Recipe) and recipe.description
    assert len(load_recipe("moa").layers) == 2  # 3 layers with the aggregator
    assert all(m.startswith("local:") for m in compile_recipe("local").models)
    self_moa = load_recipe("self-moa").layers[0]
    assert self_moa.size >= 3 and len({a.model for a in self_moa.agents}) == 1


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("openai:gpt-4o-mini", ModelRef("openai", "gpt-4o-mini")),
        ("together:Qwen/Qwen2.5-72B", ModelRef("together", "Qwen/Qwen2.5-72B")),
        ("vllm:m@http://host:8000/v1", ModelRef("vllm", "m", "http://host:8000/v1")),
        ("ollama:llama3.2:3b", ModelRef("ollama", "llama3.2:3b")),
        ("gguf:/models/x@y.gguf", ModelRef("gguf", "/models/x@y.gguf")),
        ("local:smollm2-135m-instruct", ModelRef("local", "smollm2-135m-instruct")),
    ],
)
def test_parse_refs(ref: str, parsed: ModelRef) -> None:
    assert parse_ref(ref) == parsed


@pytest.mark.parametrize(
    ("ref", "words"),
    [("gpt-4o", "PROVIDER:MODEL"), ("openai:", "PROVIDER:MODEL"), ("nowhere:m", "unknown")],
)
def test_bad_refs(ref: str, words: str) -> None:
    with pytest.raises(ModelRefError, match=words):
        parse_ref(ref)


def test_vllm_needs_a_url_of_the_users_and_its_key_goes_there() -> None:
    key = {"VLLM_API_KEY": "sk-vllm-secret"}
    with pytest.raises(ModelRefError, match=r"has no base URL; add @URL or set VLLM_BASE_URL"):
        MoA({"layers": [], "aggregator": "vllm:m"}, env=key)
    # the URL the user gives is where vllm's key belongs: by @URL, or by VLLM_BASE_URL
    ref = "vllm:m@http://10.0.0.5:8000/v1"
    MoA({"layers": [], "aggregator": ref}, env=key).resolver.check(ref)
    MoA({"layers": [], "aggregator": "vllm:m"}, env={**key, "VLLM_BASE_URL": "http://h:8/v1"})
    # a provider with a home URL keeps the protection
    with pytest.raises(ConfigError, match="refusing to send OPENAI_API_KEY"):
        MoA(
            {"layers": [], "aggregator": "openai:m@http://10.0.0.5/v1"}, env={"OPENAI_API_KEY": "k"}
        )


def test_a_recipes_own_providers_are_known_only_while_it_loads() -> None:
    data = {
        "providers": {"mine": {"base_url": "http://127.0.0.1:9/v1"}},
        "layers": [["mine:x"]],
        "aggregator": "mine:x",
    }
    assert load_recipe(data).aggregator.model == "mine:x"
    with pytest.raises(ValidationError, match="unknown provider 'mine'"):
        Agent(model="mine:x")
    with pytest.raises(RecipeError, match="unknown provider 'mine'"):
        load_recipe({"layers": [], "aggregator": "mine:x"})


def test_missing_key_is_found_before_any_call_and_keys_never_leak() -> None:
    with pytest.raises(MissingKeyError) as info:
        MoA({"layers": [["fake:a"]], "aggregator": "groq:llama"}, env={})
    assert "GROQ_API_KEY" in str(info.value)
    secret = "sk-secret-value-123"
    m = MoA({"layers": [], "aggregator": "groq:llama"}, env={"GROQ_API_KEY": secret})
    backend, model = m.resolver.resolve("groq:llama")
    assert model == "llama" and secret not in repr(backend)


def test_custom_provider_by_configuration() -> None:
    data = {
        "providers": {"mine": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "MINE_KEY"}},
        "layers": [],
        "aggregator": "mine:model-x",
    }
    with pytest.raises(MissingKeyError, match="MINE_KEY"):
        MoA(data, env={})
    m = MoA(data, env={"MINE_KEY": "k"})
    backend, _ = m.resolver.resolve("mine:model-x")
    assert "127.0.0.1:9" in repr(backend)


def test_the_readme_describes_each_builtin_recipe_as_the_recipe_does() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme.split("Built-in recipes", 1)[1].split("\n\n", 2)[1]
    rows = dict(re.findall(r"^\| `([\w.-]+)` \| (.+) \|$", table, flags=re.MULTILINE))
    assert sorted(rows) == sorted(builtin_names())
    for name, text in rows.items():
        assert text == load_recipe(name).description, name


LOCAL_MODEL = "local:qwen2.5-coder-1.5b-instruct"


CODE = "```python\ndef double(x):\n    return {}\n```"
FUNCTION = 'def double(x):\n    """Twice x.\n    >>> double(2)\n    4\n    """\n'


@pytest.mark.parametrize(
    ("greedy", "samples", "answer", "note", "asked"),
    [
        ("Answer: 5", ["Answer: 7", "Answer: 7", "Answer: 8"], "Answer: 7", "number: vote", 4),
        ("Answer: 5", ["Answer: 7", "Answer: 7", "Answer: 5"], "Answer: 5", "number: vote", 4),
        ("Answer: 5", ["Answer: 6", "Answer: 7", "Answer: 8"], "Answer: 5", "number: vote", 4),
        # a 2-2 tie goes to the greedy answer
        ("Answer: 5", ["Answer: 5", "Answer: 7", "Answer: 7"], "Answer: 5", "number: vote", 4),
        # prose whose prompt states no constraint: the greedy answer
        ("Paris.", ["The capital is Paris.", "Rome.", "Oslo."], "Paris.", "prose: checks", 4),
        # prose whose prompt asks for lower case, which only a sample meets: that sample
        ("Paris.", ["The capital is Paris.", "paris.", "Oslo."], "paris.", "prose: checks", 4),
        # code: the function that passes the prompt's own example (double(2) == 4)
        (
            CODE.format("x + 3"),
            [CODE.format("x * 2"), CODE.format("x ** 3"), CODE.format("x")],
            CODE.format("x * 2"),
            "code: behaviour",
            4,
        ),
    ],
)
async def test_the_local_recipe_runs_as_described(
    greedy: str, samples: list[str], answer: str, note: str, asked: int
) -> None:
    """Four answers of one model (one greedy, three sampled) and one rule per kind of answer: a plurality vote on final numbers with ties to the greedy
    answer, code by its behaviour on the prompt's examples, prose by the constraints its prompt
    states; never a synthesis."""
    recipe = load_recipe("local")
    assert {*compile_recipe(recipe).models} == {LOCAL_MODEL}
    data = recipe.model_dump(mode="json", exclude_none=True)
    text = json.dumps(data).replace(LOCAL_MODEL, "fake:qwen")
    fake = FakeBackend()
    by_seed = {None: greedy, 0: samples[0], 1: samples[1], 2: samples[2]}
    fake.respond("qwen", lambda r: by_seed[r.settings.seed])
    prompt = f"Complete this function.\n\n```python\n{FUNCTION}```" if "code" in note else "Which?"
    if answer == "paris.":  # the case whose prompt states a constraint
        prompt = "Which? Answer in all lowercase letters."
    result = await MoA(json.loads(text), backends={"fake": fake}).arun(prompt)
    proposed = [c for c in result.trace.calls if c.layer == 1]
    assert [c.settings.get("temperature") for c in proposed] == [0, 0.7, 0.7, 0.7][: len(proposed)]
    assert all(c.settings.get("logprobs") for c in proposed)
    assert result.text == answer
    assert f"the answers read as {note}" in result.trace.notes
    assert len(fake.calls) == asked  # and no aggregator call
