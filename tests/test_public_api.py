"""The public surface is what `moa.__all__` claims, and the README's example runs."""

from __future__ import annotations

import moa


def test_all_names_exist_and_nothing_public_is_unlisted() -> None:
    for name in moa.__all__:
        assert hasattr(moa, name), name
    modules = {"backends", "cli", "engine", "errors", "limits", "recipe", "trace", "types"}
    public = {n for n in vars(moa) if not n.startswith("_") and n not in modules}
    # submodules imported as a side effect are not part of the listed surface
    public = {n for n in public if not isinstance(getattr(moa, n), type(moa))}
    assert public == set(moa.__all__) - {"__version__"}


def test_readme_fake_backend_example() -> None:
    fake = moa.FakeBackend()
    fake.enqueue("a", "first answer").fail("b", moa.BackendTimeout("slow"), times=1)
    fake.latency("c", 0.01)
    recipe = {
        "layers": [["fake:a", "fake:b", "fake:c"]],
        "aggregator": "fake:agg",
        "retry": {"attempts": 1},
    }
    with moa.MoA(recipe, backends={"fake": fake}) as m:
        result = m.run("hi")
    assert result.text.startswith("[agg] synthesis of 2 responses")
    assert [c.error_type for c in result.trace.calls] == [None, "BackendTimeout", None, None]
