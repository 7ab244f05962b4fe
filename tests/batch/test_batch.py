"""The batch runner: records per item, errors that do not stop it, resume, the bound."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from moa import FakeBackend, MoA
from moa.batch import load_items, read_results, run_batch, run_recipe
from moa.errors import ConfigError


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": str(i), "x": i} for i in range(n)]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_records_results_and_errors_without_stopping(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"

    async def work(item: dict[str, Any]) -> dict[str, Any]:
        if item["x"] == 2:
            raise ValueError("two is bad")
        return {"y": item["x"] * 10}

    summary = await run_batch(items(5), work, out=out, progress=False)
    assert (summary.ran, summary.failed, summary.skipped) == (5, 1, 0)
    done = read_results(out)
    assert done["3"] == {"id": "3", "ok": True, "y": 30}
    assert done["2"] == {"id": "2", "ok": False, "error": "two is bad", "error_type": "ValueError"}


async def test_resume_after_an_interrupted_run(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    seen: list[str] = []
    stop = asyncio.Event()

    async def slow(item: dict[str, Any]) -> dict[str, Any]:
        seen.append(item["id"])
        if len(seen) >= 4:
            stop.set()
            await asyncio.sleep(10)  # still in flight when the run is cut
        return {"y": item["x"]}

    task = asyncio.create_task(run_batch(items(10), slow, out=out, concurrency=2, progress=False))
    await stop.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # a crash in the middle of a write leaves a cut line: it is ignored
    with out.open("a") as f:
        f.write('{"id": "9", "ok": tr')
    first = {r["id"] for r in lines_ok(out)}
    assert 1 <= len(first) <= 3

    again: list[str] = []

    async def work(item: dict[str, Any]) -> dict[str, Any]:
        again.append(item["id"])
        return {"y": item["x"]}

    summary = await run_batch(items(10), work, out=out, progress=False)
    assert summary.skipped == len(first) and summary.ran == 10 - len(first)
    assert not set(again) & first
    assert sorted(read_results(out), key=int) == [str(i) for i in range(10)]


def lines_ok(path: Path) -> list[dict[str, Any]]:
    return [r for r in read_results(path).values() if r.get("ok")]


async def test_failed_items_run_again(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    fail = {"1"}

    async def work(item: dict[str, Any]) -> dict[str, Any]:
        if item["id"] in fail:
            raise RuntimeError("flaky")
        return {}

    await run_batch(items(3), work, out=out, progress=False)
    fail.clear()
    summary = await run_batch(items(3), work, out=out, progress=False)
    assert (summary.ran, summary.skipped) == (1, 2)
    assert all(r["ok"] for r in read_results(out).values())


async def test_concurrency_is_bounded(tmp_path: Path) -> None:
    running = peak = 0

    async def work(item: dict[str, Any]) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return {}

    await run_batch(items(12), work, out=tmp_path / "r.jsonl", concurrency=3, progress=False)
    assert peak == 3
    with pytest.raises(ConfigError):
        await run_batch(items(1), work, out=tmp_path / "x.jsonl", concurrency=0)


def test_load_items(tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"prompt": "a"}\n\n{"prompt": "b", "id": 7}\n')
    assert load_items(jsonl) == [{"prompt": "a", "id": "0"}, {"prompt": "b", "id": "7"}]
    js = tmp_path / "b.json"
    js.write_text(json.dumps([{"id": "x"}, {"id": "y"}]))
    assert [i["id"] for i in load_items(js)] == ["x", "y"]
    js.write_text(json.dumps([{"id": "x"}, {"id": "x"}]))
    with pytest.raises(ConfigError, match="duplicate id"):
        load_items(js)
    bad = tmp_path / "c.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid"):
        load_items(bad)


async def test_a_recipe_over_a_dataset(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.respond("agg", lambda r: "final: " + r.messages[-1].content)
    moa = MoA({"layers": [["fake:a", "fake:b"]], "aggregator": "fake:agg"}, backends={"fake": fake})
    data = load_items([{"prompt": "one"}, {"prompt": "two"}, {"question": "no prompt"}])
    summary = await run_recipe(None, data, out=tmp_path / "o.jsonl", moa=moa, progress=False)
    assert summary.failed == 1
    done = read_results(tmp_path / "o.jsonl")
    assert done["0"]["text"] == "final: one" and done["0"]["trace"]["outcome"] == "ok"
    assert done["2"]["error_type"] == "ConfigError"


# streaming and durability -------------------------------------------------------------------
async def test_items_are_read_as_a_stream_with_a_bounded_number_in_flight(tmp_path: Path) -> None:
    pulled = 0
    finished = 0
    ahead: list[int] = []

    def source() -> Any:
        nonlocal pulled
        for i in range(200):
            pulled += 1
            ahead.append(pulled - finished)
            yield {"id": str(i), "x": i}

    async def work(item: dict[str, Any]) -> dict[str, Any]:
        nonlocal finished
        await asyncio.sleep(0.001)
        finished += 1
        return {}

    summary = await run_batch(
        source(), work, out=tmp_path / "r.jsonl", concurrency=5, progress=False
    )
    assert summary.ran == summary.total == 200
    # never more than the bound (plus the one just read) taken from the source ahead of the work
    assert max(ahead) <= 6


async def test_a_line_is_on_disk_before_its_item_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r.jsonl"
    synced: list[int] = []  # lines in the file at each fsync
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append(len(out.read_text().splitlines()))

    monkeypatch.setattr(os, "fsync", fsync)

    async def work(item: dict[str, Any]) -> dict[str, Any]:
        return {"y": 1}

    summary = await run_batch(items(30), work, out=out, concurrency=4, progress=False)
    assert summary.ran == 30 and len(lines(out)) == 30
    assert synced and synced[-1] == 30 and len(synced) <= 30  # group commit: one fsync per group
    monkeypatch.setattr(os, "fsync", lambda fd: pytest.fail("fsync despite fsync=False"))
    await run_batch(items(3), work, out=tmp_path / "n.jsonl", progress=False, fsync=False)


async def test_resume_reads_the_log_as_a_stream_and_ends_a_cut_line(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    out.write_text(
        '{"id": "0", "ok": true}\n{"id": "1", "ok": false, "error": "x"}\n{"id": "2", "o'
    )

    async def work(item: dict[str, Any]) -> dict[str, Any]:
        return {"again": True}

    summary = await run_batch(items(3), work, out=out, progress=False)
    assert (summary.skipped, summary.ran) == (1, 2)
    assert out.read_text().splitlines()[2] == '{"id": "2", "o'  # the cut line, ended alone
    rows = lines_whole(out)
    assert [r["id"] for r in rows[:2]] == ["0", "1"] and len(rows) == 4
    assert sorted(r["id"] for r in rows[2:]) == ["1", "2"] and all(r["ok"] for r in rows[2:])


def lines_whole(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


async def test_a_bad_line_in_the_middle_stops_the_batch_after_the_items_in_flight(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "a"}\n{"id": "c"}\n')
    with pytest.raises(ConfigError, match="duplicate id 'a'"):
        await run_batch(source, lambda item: asyncio.sleep(0.01, {}), out=tmp_path / "o.jsonl")
    assert sorted(r["id"] for r in lines(tmp_path / "o.jsonl")) == ["a", "b"]
