"""The batcher's text handling, without a model: split characters and stop strings."""

from __future__ import annotations

import threading
from typing import Any

from moa.backends.llamacpp_batch import Batcher, Job
from moa.types import Settings


class _Quiet(Batcher):
    """A batcher with no llama.cpp context: only the text logic runs."""

    def __init__(self) -> None:
        self._active = []
        self.released: list[Job] = []

    def _release(self, job: Job) -> None:
        self.released.append(job)


def _job(stop: tuple[str, ...] = ()) -> tuple[Job, list[tuple[str, Any]]]:
    out: list[tuple[str, Any]] = []
    job = Job(
        tokens=[1, 2, 3],
        settings=Settings(),
        stop=stop,
        emit=out.append,
        cancel=threading.Event(),
        model="m",
    )
    return job, out


def _text(out: list[tuple[str, Any]]) -> str:
    return "".join(v.text for k, v in out if k == "delta")


def test_a_character_split_across_tokens_is_sent_whole() -> None:
    b = _Quiet()
    job, out = _job()
    snowman = "☃".encode()  # three bytes
    b._push(job, b"a" + snowman[:1])
    assert _text(out) == "a"
    b._push(job, snowman[1:2])
    b._push(job, snowman[2:] + b"b")
    assert _text(out) == "a☃b"
    assert all("\ufffd" not in v.text for _, v in out)


def test_a_stop_string_across_tokens_ends_the_answer_before_it() -> None:
    b = _Quiet()
    job, out = _job(stop=("END",))
    b._active.append(job)
    for piece in (b"one two E", b"N", b"D three"):
        b._push(job, piece)
    assert _text(out) == "one two "
    assert out[-1][0] == "done" and out[-1][1].finish_reason == "stop"
    assert b.released == [job] and job not in b._active


def test_held_text_that_was_no_stop_string_is_sent() -> None:
    b = _Quiet()
    job, out = _job(stop=("END",))
    b._active.append(job)
    b._push(job, b"ENTER")
    assert _text(out) == "ENTER"
    b._push(job, b" E")
    assert _text(out) == "ENTER "  # "E" might begin "END": held back
    b._finish(job, "length")
    assert _text(out) == "ENTER E"
    assert out[-1][1].usage.input_tokens == 3
