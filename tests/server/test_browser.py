"""The web page in real headless Chromium: layers fill in, the answer streams, multi-turn, stop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("playwright.sync_api")

from playwright.sync_api import expect, sync_playwright

from moa import FakeBackend
from moa.errors import BackendTimeout
from moa.server import create_app
from moa.server.testing import ServerThread

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
KEY = "page-key"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")

RECIPES: dict[str, Any] = {
    "two-layer": {
        "description": "Three proposers, then two refiners (one of them times out)",
        "layers": [
            ["fake:alpha", "fake:beta", "fake:gamma"],
            {"agents": ["fake:refiner", "fake:flaky"], "quorum": 1},
        ],
        "aggregator": "fake:aggregator",
        "retry": {"attempts": 1},
    },
    "slow": {"layers": [["fake:slow-a", "fake:slow-b"]], "aggregator": "fake:aggregator"},
}


@pytest.fixture(scope="module")
def fake() -> FakeBackend:
    fake = FakeBackend()
    fake.latency("alpha", 0.2).latency("beta", 0.45).latency("gamma", 0.3)
    fake.latency("refiner", 0.25).latency("flaky", 0.15)
    fake.fail("flaky", BackendTimeout("no answer within 30s", model="fake:flaky"))
    fake.latency("aggregator", 0.05, per_token=0.03)
    fake.latency("slow-a", 5.0).latency("slow-b", 5.0)
    return fake


@pytest.fixture(scope="module")
def server(fake: FakeBackend) -> Iterator[ServerThread]:
    app = create_app(api_key=KEY, recipes=RECIPES, backends={"fake": fake}, demo=True)
    with ServerThread(app) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: ServerThread) -> Iterator[Any]:
    """A fresh page that has given the server its key through the key dialog."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    dialog = page.locator("#key-dialog")
    dialog.wait_for(state="visible")
    page.fill("#key-input", KEY)
    page.click("#key-save")
    page.wait_for_selector("#recipe option", state="attached")
    yield page
    context.close()
    assert errors == []


def test_a_wrong_key_is_asked_again(browser: Any, server: ServerThread) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url)
    page.locator("#key-dialog").wait_for(state="visible")
    page.fill("#key-input", "wrong")
    page.click("#key-save")
    expect(page.locator("#key-error")).to_have_text("That key was refused.")
    expect(page.locator("#key-dialog")).to_be_visible()
    context.close()


def test_a_run_fills_every_layer_then_streams_the_answer(page: Any, fake: FakeBackend) -> None:
    page.select_option("#recipe", "two-layer")
    expect(page.locator("#recipe-info")).to_contain_text("2 layers (3 → 2)")
    prompt = "What is 17 * 23? Show the steps."
    page.fill("#prompt", prompt)
    page.press("#prompt", "Enter")

    turn = page.locator(".turn").nth(0)
    expect(turn.locator(".user-msg")).to_have_text(prompt)
    layers = turn.locator(".layer")
    expect(layers).to_have_count(2)
    expect(turn.locator(".agent.running").first).to_be_visible()  # columns fill in live
    expect(turn.locator(".final.done")).to_be_visible(timeout=10_000)

    first, second = layers.nth(0), layers.nth(1)
    expect(first.locator(".agent.done")).to_have_count(3)
    expect(first.locator(".layer-status")).to_have_text("3 / 3 answered")
    for name in ("alpha", "beta", "gamma"):
        card = first.locator(".agent", has_text=f"fake:{name}")
        expect(card.locator(".text")).to_have_text(f"[{name}] answer to: {prompt}")
        expect(card.locator(".stats")).to_contain_text(" in · ")
        expect(card.locator(".stats")).to_contain_text(" s")
    expect(second.locator(".agent.done")).to_have_count(1)
    failed = second.locator(".agent.failed")
    expect(failed).to_have_count(1)
    expect(failed.locator(".text")).to_have_text("BackendTimeout: no answer within 30s")
    expect(second.locator(".layer-status")).to_have_text("1 / 2 answered · 1 failed")
    expect(turn.locator(".answer")).to_have_text(
        f"[aggregator] synthesis of 1 responses to: {prompt}"
    )
    expect(turn.locator(".run-status")).to_have_text("done")
    expect(turn.locator(".totals")).to_contain_text("6 calls")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "server-page.png"))

    turn.get_by_role("button", name="Show trace").click()
    expect(turn.locator("pre.trace")).to_contain_text('"role": "aggregator"')
    assert turn.locator("a", has_text="Download trace").get_attribute("download")


def test_multi_turn_sends_the_conversation_again(page: Any, fake: FakeBackend) -> None:
    page.select_option("#recipe", "fake")
    page.fill("#prompt", "What is 2+2?")
    page.press("#prompt", "Enter")
    expect(page.locator(".turn .final.done")).to_have_count(1, timeout=10_000)
    page.fill("#prompt", "And 3+3?")
    page.press("#prompt", "Enter")
    expect(page.locator(".turn .final.done")).to_have_count(2, timeout=10_000)
    sent = fake.requests("aggregator")[-1].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1].content == "What is 2+2?"
    assert sent[2].content == "[aggregator] synthesis of 3 responses to: What is 2+2?"
    assert sent[3].content == "And 3+3?"
    expect(page.locator(".agents-box").nth(0)).not_to_have_attribute("open", "")
    page.screenshot(path=str(ARTIFACTS / "server-page-multiturn.png"), full_page=True)

    page.click("#new-chat")
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#welcome")).to_be_visible()


def test_stop_cancels_the_run(page: Any, fake: FakeBackend, server: ServerThread) -> None:
    before = len(fake.cancelled)
    page.select_option("#recipe", "slow")
    page.fill("#prompt", "Take your time.")
    page.press("#prompt", "Enter")
    expect(page.locator(".agent.running")).to_have_count(2)
    page.click("#stop")
    expect(page.locator(".run-status")).to_have_text("stopped")
    until = time.monotonic() + 3
    while sorted(fake.cancelled[before:]) != ["slow-a", "slow-b"]:
        assert time.monotonic() < until, fake.cancelled
        time.sleep(0.02)
    health = httpx.get(server.url + "/health").json()
    assert health["active_runs"] == 0
    expect(page.locator("#send")).to_be_visible()


def test_without_the_demo_the_page_picks_a_recipe_that_can_run(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path))  # no local model: local recipes can't run
    app = create_app(api_key="", recipes={"zz-works": RECIPES["slow"]}, env={})
    with ServerThread(app) as running:
        context = browser.new_context()
        page = context.new_page()
        page.goto(running.url)
        page.wait_for_selector("#recipe option", state="attached")
        expect(page.locator("#recipe")).to_have_value("zz-works")
        expect(page.locator("#recipe option", has_text="moa-lite")).to_have_text(
            "moa-lite (unavailable)"
        )
        context.close()
