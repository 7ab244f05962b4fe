"""Reports: the same rows as JSON (for tools), Markdown (for people) and a PNG plot.

Kinds of report and their columns: `accuracy` (GSM8K, HumanEval), `instructions` (IFEval's and
IFBench's strict and loose scores), `winrate` (pairwise), `score` (MT-Bench), `collab`
(collaborativeness: each model alone and with the others' answers).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moa.redact import redact_data, redact_urls

__all__ = ["Report", "markdown", "plot", "write_report"]

Fmt = Callable[[dict[str, Any]], str]


def _pct(key: str) -> Fmt:
    return lambda r: f"{100 * r[key]:.1f}"


def _ci(lo: str, hi: str, scale: float = 100) -> Fmt:
    return lambda r: f"{scale * r[lo]:.1f}-{scale * r[hi]:.1f}"


def _num(key: str, digits: int = 0) -> Fmt:
    return lambda r: f"{r[key]:.{digits}f}"


def _cost(r: dict[str, Any]) -> str:
    """The recipe's cost per question at the given prices; '-' without prices."""
    return "-" if r.get("cost") is None else f"{r['cost']:.5f}"


def _wall(r: dict[str, Any]) -> str:
    """Measured wall time per question of uncached runs, and over how many items."""
    if r.get("wall") is None:
        return "-"
    return f"{r['wall']:.0f} (n={r['timed']})" if r["timed"] != r["n"] else f"{r['wall']:.0f}"


COLUMNS: dict[str, list[tuple[str, Fmt]]] = {
    "accuracy": [
        ("recipe", lambda r: str(r["name"])),
        ("accuracy %", _pct("accuracy")),
        ("95% CI", _ci("ci_low", "ci_high")),
        ("tokens/q", _num("tokens")),
        ("cost/q", _cost),
        ("output tokens/q", _num("output_tokens")),
        ("s/q", _wall),
        ("n", lambda r: str(r["n"])),
    ],
    "instructions": [
        ("recipe", lambda r: str(r["name"])),
        ("prompt strict %", _pct("accuracy")),
        ("95% CI", _ci("ci_low", "ci_high")),
        ("prompt loose %", _pct("loose")),
        ("instruction strict %", _pct("instruction_strict")),
        ("instruction loose %", _pct("instruction_loose")),
        ("tokens/q", _num("tokens")),
        ("output tokens/q", _num("output_tokens")),
        ("s/q", _wall),
        ("n", lambda r: str(r["n"])),
    ],
    "winrate": [
        ("recipe", lambda r: str(r["name"])),
        ("win rate %", _num("win_rate", 1)),
        ("95% CI", _ci("ci_low", "ci_high", 1)),
        ("LC win rate %", _num("lc_win_rate", 1)),
        ("length ratio", _num("length_ratio", 2)),
        ("tokens/q", _num("tokens")),
        ("cost/q", _cost),
        ("s/q", _wall),
        ("unread verdicts", lambda r: str(r["unparsed"])),
        ("n", lambda r: str(r["n"])),
    ],
    "score": [
        ("recipe", lambda r: str(r["name"])),
        ("score", _num("score", 2)),
        ("turn 1", _num("turn1", 2)),
        ("turn 2", _num("turn2", 2)),
        ("95% CI", _ci("ci_low", "ci_high", 1)),
        ("tokens/q", _num("tokens")),
        ("cost/q", _cost),
        ("s/q", _wall),
        ("unread", lambda r: str(r["unparsed"])),
        ("n", lambda r: str(r["n"])),
    ],
    "collab": [
        ("model", lambda r: str(r["name"])),
        ("alone %", _pct("alone")),
        ("with the others' answers %", _pct("with_others")),
        ("change (points)", lambda r: f"{100 * (r['with_others'] - r['alone']):+.1f}"),
        ("n", lambda r: str(r["n"])),
    ],
}
# (x, y, y error low, y error high, y label, y scale) of the plot of each kind
AXES: dict[str, tuple[str, str, str | None, str | None, str, float]] = {
    "accuracy": ("tokens", "accuracy", "ci_low", "ci_high", "accuracy (%)", 100.0),
    "instructions": ("tokens", "accuracy", "ci_low", "ci_high", "prompt-level strict (%)", 100.0),
    "winrate": ("tokens", "win_rate", "ci_low", "ci_high", "win rate (%)", 1.0),
    "score": ("tokens", "score", "ci_low", "ci_high", "MT-Bench score (1-10)", 1.0),
}


KIND_LABELS = {
    "alone": "one model",
    "vote": "majority vote",
    "rank": "LLM ranker",
    "recipe": "aggregation",
    "self": "Self-MoA twin",
}


@dataclass
class Report:
    title: str
    rows: list[dict[str, Any]]
    kind: str = "accuracy"
    meta: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def markdown(report: Report) -> str:
    columns = COLUMNS[report.kind]
    lines = [f"# {report.title}", ""]
    lines.append("| " + " | ".join(h for h, _ in columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in report.rows:
        lines.append("| " + " | ".join(fmt(row) for _, fmt in columns) + " |")
    lines.append("")
    for key, value in report.meta.items():
        text = value if isinstance(value, str) else json.dumps(value)
        text = text.replace("\n", " ")
        lines.append(f"- {key}: {text}")
    return "\n".join(lines) + "\n"


def plot(report: Report, path: Path) -> Path | None:
    """The report's picture; None (and no file) when matplotlib is not installed."""
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    if report.kind == "collab":
        names = [str(r["name"]) for r in report.rows]
        xs = list(range(len(names)))
        ax.bar([x - 0.2 for x in xs], [100 * r["alone"] for r in report.rows], 0.4, label="alone")
        ax.bar(
            [x + 0.2 for x in xs],
            [100 * r["with_others"] for r in report.rows],
            0.4,
            label="with the other models' answers",
        )
        ax.set_xticks(xs, names, rotation=15, ha="right")
        ax.set_ylabel("accuracy (%)")
        ax.legend()
    else:
        x_key, y_key, lo_key, hi_key, y_label, scale = AXES[report.kind]
        styles = {
            k: (f"C{i}", m) for i, (k, m) in enumerate(zip(KIND_LABELS, "osD^v", strict=True))
        }
        seen: set[str] = set()
        for row in report.rows:
            kind = str(row.get("kind", "recipe"))
            color, marker = styles.get(kind, ("C5", "P"))
            x, y = row[x_key], scale * row[y_key]
            err = None
            if lo_key and hi_key:
                err = [[y - scale * row[lo_key]], [scale * row[hi_key] - y]]
            label = KIND_LABELS.get(kind, kind) if kind not in seen else None
            seen.add(kind)
            ax.errorbar(x, y, yerr=err, fmt=marker, color=color, capsize=3, alpha=0.85, label=label)
            ax.annotate(
                str(row["name"]), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7
            )
        ax.legend(fontsize=8, loc="best")
        if all(row[x_key] > 0 for row in report.rows):  # a row of failed items has none
            ax.set_xscale("log")
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel("tokens per question (input + output, log scale)")
        ax.set_ylabel(y_label)
        ax.grid(True, alpha=0.3)
    ax.set_title(report.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(out_dir: str | Path, report: Report, *, stem: str = "report") -> Report:
    """Write `<stem>.json`, `<stem>.md` and `<stem>.png` under `out_dir`, with the credentials
    of any URL in them (a model reference's base URL, in a row's name or recipe) hidden."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.title = redact_urls(report.title)
    report.rows = redact_data(report.rows)
    report.meta = redact_data(report.meta)
    data = {"title": report.title, "kind": report.kind, "meta": report.meta, "rows": report.rows}
    report.files["json"] = out / f"{stem}.json"
    report.files["json"].write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    report.files["md"] = out / f"{stem}.md"
    report.files["md"].write_text(markdown(report))
    png = plot(report, out / f"{stem}.png")
    if png is not None:
        report.files["png"] = png
    return report
