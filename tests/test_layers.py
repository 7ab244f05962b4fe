"""The package's layout as a contract: no import cycle, and no module imports a layer above its
own (late imports inside functions included). The checker is itself tested on a package with a
deliberately wrong import."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "moa"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "redact", "context", "limits", "sandbox", "depth", "schema", "reasoning"),
    (
        *("types", "trace", "tools", "toolcalls", "reference_view"),
        *("prompts", "events", "cost", "catalog"),
    ),
    ("backends",),
    ("providers", "resolver", "meter", "cache", "agent"),
    ("strategies",),
    ("recipe", "plan"),
    ("call",),
    ("engine", "layers"),
    ("console", "batch", "server", "evals", "integrations", "cli", "__init__"),
)
"""The layers, lowest first: a module may import its own layer and those below it."""

FORBIDDEN = {
    "call": ("strategies",),  # one call's rules know nothing of how answers are chosen
    "strategies": ("call", "engine", "plan", "recipe"),  # a strategy sees the run via its context
}
"""Imports the layers alone would allow, refused all the same."""


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package at `root`, by dotted name."""
    return {
        ".".join(("moa", *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): p
        for p in root.rglob("*.py")
    }


def imports(path: Path, known: set[str]) -> set[str]:
    """The moa modules a module imports, at the top or late (inside a function); `from moa
    import catalog` is the module moa.catalog."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "moa":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "moa")
    return found


def part(module: str) -> str:
    """The top-level part of the package a module belongs to ('call', 'strategies', ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def level(module: str) -> int:
    name = part(module)
    for number, layer in enumerate(LAYERS):
        if name in layer:
            return number
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def violations(root: Path) -> list[str]:
    """Each import that goes up a layer or crosses a forbidden line."""
    found = modules(root)
    names = set(found)
    out = []
    for name, path in sorted(found.items()):
        for imported in sorted(imports(path, names)):
            if imported == "moa" or part(imported) == part(name):
                continue  # the package itself (moa/__init__ is its façade), or its own part
            if level(imported) > level(name):
                out.append(f"{name} imports {imported}, a layer above its own")
            elif part(imported) in FORBIDDEN.get(part(name), ()):
                out.append(f"{name} imports {imported}, which it must not")
    return out


def cycle(root: Path) -> list[str] | None:
    """An import cycle among the modules at `root` (what importing one module runs: it and its
    packages, except those it sits in), or None."""
    found = modules(root)

    def loads(name: str, imported: str) -> set[str]:
        parts = imported.split(".")
        chain = {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
        return {m for m in chain if m in found and not name.startswith(m + ".") and m != name}

    graph = {n: {m for i in imports(p, set(found)) for m in loads(n, i)} for n, p in found.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (looped := visit(nxt, [*path, node])):
                return looped
        state[node] = 2
        return None

    for name in sorted(found):
        if name not in state and (looped := visit(name, [])):
            return looped
    return None


def test_no_import_cycle_in_the_package() -> None:
    looped = cycle(SRC)
    assert looped is None, "import cycle: " + " -> ".join(looped or [])


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert violations(SRC) == []


def test_the_contract_catches_a_wrong_import(tmp_path: Path) -> None:
    root = tmp_path / "moa"
    (root / "strategies").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "strategies" / "__init__.py").write_text("")
    (root / "engine.py").write_text("from moa.call import Caller\n")
    (root / "call.py").write_text("def f():\n    from moa.strategies.tally import tally\n")
    (root / "strategies" / "steps.py").write_text("from moa import engine\n")
    assert violations(root) == [
        "moa.call imports moa.strategies.tally, which it must not",
        "moa.strategies.steps imports moa.engine, a layer above its own",
    ]
    (root / "call.py").write_text("from moa.engine import x\n")
    assert cycle(root) == ["moa.call", "moa.engine", "moa.call"]
