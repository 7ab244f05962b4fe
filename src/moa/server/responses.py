"""The Responses API (`POST /v1/responses`): its request mapped onto a run, and its answer.

The input is a string or a list of items: messages (text parts), `function_call` items (an
assistant turn's tool calls; consecutive ones make one turn) and `function_call_output` items
(tool results, paired by `call_id`); reasoning items are skipped. `instructions` become the
system message, `text.format` the response format, `max_output_tokens` the answer's limit;
tools are the flat function tools of this API. The server keeps nothing between requests:
`previous_response_id` and `store: true`'s retrieval are refused, naming the field.

The answer's output items: `reasoning` (the final's thinking, where there was some), then a
`message` with its `output_text`, or one `function_call` item per call (`call_id` is the
call's id). Streamed, every event has a `sequence_number` counting from 0: `response.created`,
`response.in_progress`; while the references run, their progress as a reasoning item
(`response.output_item.added`, `response.reasoning_text.delta`...,
`response.reasoning_text.done`, `response.output_item.done`: clients show it as thinking);
then for text `response.output_item.added`, `response.content_part.added`,
`response.output_text.delta`..., `response.output_text.done`, `response.content_part.done`,
`response.output_item.done`; for each call
`response.output_item.added`, `response.function_call_arguments.delta`,
`response.function_call_arguments.done`, `response.output_item.done`; and last
`response.completed` with the whole response (or `error` then `response.failed`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError

from moa.errors import ConfigError
from moa.events import Result
from moa.server.chat import usage_dict
from moa.server.errors import ApiError, invalid
from moa.server.wire import MoAOptions, _Open, checked_act, field_error, load_body, sse
from moa.types import Act, Message, Settings, to_messages

__all__ = ["ResponsesFormat", "ResponsesRequest", "parse_responses_request"]


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ConfigError(f"{where}: expected text or a list of text parts")
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("input_text", "output_text", "text"):
            raise ConfigError(f"{where}[{j}].type: only text parts are supported, got {kind!r}")
        parts.append(str(part.get("text", "")))
    return "".join(parts)


def _messages(items: Any, instructions: str | None) -> list[dict[str, Any]]:
    """The input items as chat messages (OpenAI's form, for `to_messages`)."""
    out: list[dict[str, Any]] = (
        [{"role": "system", "content": instructions}] if instructions else []
    )
    if isinstance(items, str):
        return [*out, {"role": "user", "content": items}]
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected an item object")
        kind = item.get("type", "message")
        if kind == "message":
            content = _text(item.get("content"), f"{where}.content")
            out.append({"role": item.get("role"), "content": content})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments")},
            }
            last = out[-1] if out else None
            if last and last["role"] == "assistant" and last.get("tool_calls") is not None:
                last["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _text(output, f"{where}.output")
            out.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
        elif kind != "reasoning":
            raise ConfigError(
                f"{where}.type: expected message, function_call or function_call_output, "
                f"got {kind!r}"
            )
    return out


class ResponsesRequest(_Open):
    model: str = Field(min_length=1)
    input: str | list[Any]
    instructions: str | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    stream: bool = False
    previous_response_id: str | None = None
    moa: MoAOptions | None = None
    _messages: tuple[Message, ...] = PrivateAttr(default=())
    _act: Act | None = PrivateAttr(default=None)
    _sampling: Settings = PrivateAttr(default_factory=Settings)

    @property
    def options(self) -> MoAOptions:
        return self.moa or MoAOptions()

    @property
    def act(self) -> Act | None:
        return self._act

    def conversation(self) -> list[Message]:
        return list(self._messages)

    def settings(self) -> dict[str, Any]:
        return self._sampling.model_dump(exclude_none=True)

    def check(self) -> None:
        """Everything a run needs, checked, or 400 naming the field."""
        if self.previous_response_id:
            raise invalid(
                "previous_response_id: this server keeps no responses; send the whole input",
                param="previous_response_id",
            )
        values = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_output_tokens,
        }
        try:
            self._sampling = Settings.model_validate(
                {k: v for k, v in values.items() if v is not None}
            )
            self._messages = to_messages(_messages(self.input, self.instructions))
        except ValidationError as exc:
            name = str(exc.errors(include_url=False)[0]["loc"][0])
            name = "max_output_tokens" if name == "max_tokens" else name
            raise invalid(f"{name}: {exc.errors(include_url=False)[0]['msg']}", name) from None
        except ConfigError as exc:
            raise invalid(str(exc), param=str(exc).partition(":")[0]) from None
        form = (self.text or {}).get("format")
        self._act = checked_act(
            {
                "tools": self.tools,
                "tool_choice": self.tool_choice,
                "parallel_tool_calls": self.parallel_tool_calls,
                "response_format": form,
            }
        )


def parse_responses_request(raw: bytes) -> ResponsesRequest:
    try:
        request = ResponsesRequest.model_validate(load_body(raw))
    except ValidationError as exc:
        raise field_error(exc) from None
    request.check()
    return request


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "status": status,
        "content": content if status == "completed" else [],
    }


def _call_item(call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": "fc_" + call_id.removeprefix("call_"),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _reasoning_item(text: str) -> dict[str, Any]:
    content = [{"type": "reasoning_text", "text": text}]
    return {"type": "reasoning", "id": _id("rs"), "summary": [], "content": content}


class ResponsesFormat:
    """The Responses API's answer to one request, whole or as its stream of events."""

    def __init__(self, request: ResponsesRequest) -> None:
        self.req = request
        self.id = _id("resp")
        self.created = int(time.time())
        self.sequence = 0
        self.items: list[dict[str, Any]] = []
        self._message: dict[str, Any] | None = None
        self._text: list[str] = []
        self._thought: list[str] = []
        self._progress: dict[str, Any] | None = None  # the references' progress, streaming
        self._progress_text: list[str] = []

    def response(self, status: str, result: Result | None = None) -> dict[str, Any]:
        act = self.req.act
        form: dict[str, Any] = {"type": "text"}
        if act and act.response_format:
            form = act.response_format.to_dict()
        if form.get("type") == "json_schema":
            form = {"type": "json_schema", **form["json_schema"]}
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.req.model,
            "output": list(self.items),
            "parallel_tool_calls": act.parallel_tool_calls is not False if act else True,
            "tool_choice": (act.to_dict().get("tool_choice", "auto") if act else "auto"),
            "tools": [
                {"type": "function", **t.to_dict()["function"], "strict": t.strict}
                for t in (act.tools if act else ())
            ],
            "text": {"format": form},
            "error": None,
            "incomplete_details": None,
            "instructions": self.req.instructions,
            "metadata": {},
            "temperature": self.req.temperature,
            "top_p": self.req.top_p,
            "max_output_tokens": self.req.max_output_tokens,
        }
        if isinstance(body["tool_choice"], dict):
            body["tool_choice"] = {"type": "function", "name": act.tool_choice if act else ""}
        if result is not None:
            usage = usage_dict(result)
            body["usage"] = {
                "input_tokens": usage["prompt_tokens"],
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": usage["completion_tokens"],
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage["total_tokens"],
            }
        return body

    def body(self, result: Result, *, include_trace: bool) -> dict[str, Any]:
        if result.reasoning:
            self.items.append(_reasoning_item(result.reasoning))
        if result.tool_calls:
            for c in result.tool_calls:
                self.items.append(_call_item(c.id, c.name, c.arguments, "completed"))
        else:
            self.items.append(_message_item(_id("msg"), result.text, "completed"))
        body = self.response("completed", result)
        if include_trace:
            body["moa"] = {"best_proposal": result.best_proposal, "trace": result.trace.to_dict()}
        return body

    # the stream ---------------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse(event, kind)

    def opening(self) -> list[bytes]:
        return [
            self._event("response.created", response=self.response("in_progress")),
            self._event("response.in_progress", response=self.response("in_progress")),
        ]

    def _close_progress(self) -> list[bytes]:
        item = self._progress
        if item is None:
            return []
        self._progress = None
        text = "".join(self._progress_text)
        index = self.items.index(item)
        done = {**item, "content": [{"type": "reasoning_text", "text": text}]}
        self.items[index] = done
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return [
            self._event("response.reasoning_text.done", text=text, **where),
            self._event("response.output_item.done", output_index=index, item=done),
        ]

    def _flush_thought(self) -> list[bytes]:
        if not self._thought:
            return self._close_progress()
        item = _reasoning_item("".join(self._thought))
        self._thought.clear()
        out = self._close_progress()
        index = len(self.items)
        self.items.append(item)
        return [
            *out,
            self._event("response.output_item.added", output_index=index, item=item),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def text(self, text: str) -> list[bytes]:
        out = self._flush_thought()
        if self._message is None:
            self._message = _message_item(_id("msg"), "", "in_progress")
            self.items.append(self._message)
            index = len(self.items) - 1
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out += [
                self._event("response.output_item.added", output_index=index, item=self._message),
                self._event(
                    "response.content_part.added",
                    item_id=self._message["id"],
                    output_index=index,
                    content_index=0,
                    part=part,
                ),
            ]
        self._text.append(text)
        index = self.items.index(self._message)
        delta = {"item_id": self._message["id"], "output_index": index, "content_index": 0}
        return [*out, self._event("response.output_text.delta", delta=text, logprobs=[], **delta)]

    def thinking(self, text: str) -> list[bytes]:
        self._thought.append(text)  # the final's thinking: one reasoning item
        return []

    def progress(self, text: str) -> list[bytes]:
        """The references' progress, as a reasoning item's text while they run (clients show
        it as thinking); it is closed when the answer starts."""
        out = []
        if self._progress is None:
            self._progress = {"type": "reasoning", "id": _id("rs"), "summary": [], "content": []}
            self._progress_text = []
            self.items.append(self._progress)
            index = len(self.items) - 1
            out.append(
                self._event("response.output_item.added", output_index=index, item=self._progress)
            )
        self._progress_text.append(text)
        where = {
            "item_id": self._progress["id"],
            "output_index": self.items.index(self._progress),
            "content_index": 0,
        }
        return [*out, self._event("response.reasoning_text.delta", delta=text, **where)]

    def _close_message(self) -> list[bytes]:
        message = self._message
        assert message is not None
        index = self.items.index(message)
        text = "".join(self._text)
        done = _message_item(message["id"], text, "completed")
        self.items[index] = done
        where = {"item_id": message["id"], "output_index": index, "content_index": 0}
        return [
            self._event("response.output_text.done", text=text, logprobs=[], **where),
            self._event("response.content_part.done", part=done["content"][0], **where),
            self._event("response.output_item.done", output_index=index, item=done),
        ]

    def finish(self, result: Result) -> list[bytes]:
        out = self._flush_thought()
        if self._message is not None:
            out += self._close_message()
        elif not result.tool_calls:  # an answer that streamed no text
            out += self.text(result.text) + self._close_message()
        for call in result.tool_calls:
            index = len(self.items)
            item = _call_item(call.id, call.name, "", "in_progress")
            self.items.append(_call_item(call.id, call.name, call.arguments, "completed"))
            where = {"item_id": item["id"], "output_index": index}
            out += [
                self._event("response.output_item.added", output_index=index, item=item),
                self._event(
                    "response.function_call_arguments.delta", delta=call.arguments, **where
                ),
                self._event(
                    "response.function_call_arguments.done", arguments=call.arguments, **where
                ),
                self._event("response.output_item.done", output_index=index, item=self.items[-1]),
            ]
        out.append(self._event("response.completed", response=self.response("completed", result)))
        return out

    def extension(self, payload: dict[str, Any], name: str) -> list[bytes]:
        return [sse(payload, name)] if payload else []

    def failure(self, error: ApiError) -> list[bytes]:
        failed = self.response("failed")
        failed["error"] = {"code": error.code or "server_error", "message": error.message}
        return [
            self._event("error", code=error.code, message=error.message, param=error.param),
            self._event("response.failed", response=failed),
        ]
