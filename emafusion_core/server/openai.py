"""The OpenAI wire format of `emafusion serve`: request schema and parsing, response and SSE chunk bodies,
error bodies, and the budget model names ("emafusion", "emafusion-budget-<usd>").

No HTTP framework and no EMAFusion here: parse_chat_request turns a decoded JSON body into a ChatRequest
(or raises APIError, which carries the status and the OpenAI error fields), and completion / chunks turn a
Served answer into the bodies an OpenAI client expects.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterator

MODEL_ID = "emafusion"
BUDGET_PREFIX = "emafusion-budget-"
# ASCII digits only, nothing after (re's `$` would accept a trailing newline and `\d` Arabic-Indic digits)
_BUDGET_RE = re.compile(r"emafusion-budget-([0-9]+(?:\.[0-9]+)?|\.[0-9]+)", re.ASCII)
MAX_DEPTH = 64  # deeper JSON than any chat request needs is refused before anything walks it
# OpenAI fields this server does not honour: refused by name rather than silently ignored
UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "response_format", "parallel_tool_calls")
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


class APIError(Exception):
    """An error the client is told about: HTTP status plus the OpenAI error fields."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = dict(headers or {})  # e.g. Retry-After on a transient refusal

    def body(self) -> dict:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    """{"error": {"message", "type", "param", "code"}}, the shape of every error the server returns."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# ---- request ---------------------------------------------------------------------------------------------


def budget_of(model: str) -> float | None:
    """None for "emafusion"; the USD cap for "emafusion-budget-<usd>"; APIError 404 otherwise."""
    if model == MODEL_ID:
        return None
    match = _BUDGET_RE.fullmatch(model)
    if match:
        value = float(match.group(1))
        if math.isfinite(value):
            return value
    raise APIError(404, f"The model '{model}' does not exist: use '{MODEL_ID}' or '{BUDGET_PREFIX}<usd>' "
                        f"(e.g. '{BUDGET_PREFIX}0.01')", "invalid_request_error", "model", "model_not_found")


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise APIError(400, f"{where}[{j}]: expected a content part object with a 'type'", param=f"{where}[{j}]")
            if part["type"] == "text":
                if not isinstance(part.get("text"), str):
                    raise APIError(400, f"{where}[{j}].text: expected a string", param=f"{where}[{j}].text")
                texts.append(part["text"])
        return "\n".join(texts)
    if content is None:
        return ""
    raise APIError(400, f"{where}: expected a string or a list of content parts, got {type(content).__name__}",
                   param=where)


@dataclass
class ChatRequest:
    """What the server uses of a chat completion request. text: the content of the last user message;
    cap_usd: the request's own USD cap (from the model name), None for none."""

    model: str
    text: str
    stream: bool
    include_usage: bool
    cap_usd: float | None
    deadline_s: float | None = None  # this request's deadline (DEADLINE_HEADER), else the config's


DEADLINE_HEADER = "x-emafusion-deadline-s"


def deadline_of(value: str | None) -> float | None:
    """The per-request deadline from the X-EMAFusion-Deadline-S header (seconds, ASCII decimal); 400 if bad."""
    if value is None:
        return None
    if re.fullmatch(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)", value, re.ASCII) is None or not 0 < float(value) < 1e6:
        raise APIError(400, f"{DEADLINE_HEADER}: expected a positive number of seconds, got {value!r}",
                       param=DEADLINE_HEADER, code="invalid_value")
    return float(value)


def decode_body(raw: bytes) -> Any:
    """The request body as JSON; APIError 400 (invalid_json) if it is not."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc})", code="invalid_json") from None
    except RecursionError:
        raise APIError(400, f"the request body is nested deeper than {MAX_DEPTH} levels", code="invalid_json") from None
    _check_tree(body)
    return body


def _check_tree(body: Any) -> None:
    """Refuse (400) JSON nested deeper than MAX_DEPTH and strings that are not valid Unicode (lone surrogates
    such as \\ud800 decode from JSON escapes but cannot be encoded again), walking without recursion."""
    stack = [(body, 1, "body")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise APIError(400, f"the request body is nested deeper than {MAX_DEPTH} levels", code="invalid_json")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise APIError(400, f"{where}: not valid Unicode (a lone surrogate escape such as \\ud800)",
                               param=None if where == "body" else where, code="invalid_value") from None
        elif isinstance(value, dict):
            for k, v in value.items():
                stack.append((k, depth + 1, where))
                stack.append((v, depth + 1, k if where == "body" else f"{where}.{k}"))
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(value))


def parse_chat_request(body: Any) -> ChatRequest:
    """Validate a decoded /v1/chat/completions body; APIError 400 (or 404 for an unknown model) names the field."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    if "model" not in body:
        raise APIError(400, "'model' is a required property", param="model", code="missing_required_parameter")
    if not isinstance(body["model"], str):
        raise APIError(400, f"model: expected a string, got {type(body['model']).__name__}", param="model",
                       code="invalid_type")
    if "messages" not in body:
        raise APIError(400, "'messages' is a required property", param="messages", code="missing_required_parameter")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise APIError(400, f"messages: expected an array, got {type(messages).__name__}", param="messages",
                       code="invalid_type")
    if not messages:
        raise APIError(400, "messages: expected a non-empty array", param="messages", code="empty_array")
    text = None
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise APIError(400, f"{where}: expected an object", param=where, code="invalid_type")
        if not isinstance(m.get("role"), str) or m["role"] not in ROLES:
            raise APIError(400, f"{where}.role: expected one of {', '.join(sorted(ROLES))}, got {m.get('role')!r}",
                           param=f"{where}.role", code="invalid_value")
        content = _content_text(m.get("content"), f"{where}.content")
        if m["role"] == "user":
            text = content
    if text is None or not text.strip():
        raise APIError(400, "messages: no user message with text to answer (the last user message is the request)",
                       param="messages", code="invalid_value")
    for name in UNSUPPORTED:
        if body.get(name) is not None:
            raise APIError(400, f"{name}: not supported by this endpoint (the routed cascade answers in plain text "
                                "and its judges read plain text); remove the field", param=name,
                           code="unsupported_parameter")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise APIError(400, f"stream: expected a boolean, got {stream!r}", param="stream", code="invalid_type")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise APIError(400, "stream_options: expected an object", param="stream_options", code="invalid_type")
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise APIError(400, f"{name}: expected a positive integer, got {value!r}", param=name, code="invalid_type")
    n = body.get("n", 1)
    if n is not None and n != 1:
        raise APIError(400, f"n: only n=1 is supported, got {n!r}", param="n", code="invalid_value")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise APIError(400, f"{name}: expected a number, got {value!r}", param=name, code="invalid_type")
    cap = budget_of(body["model"])
    return ChatRequest(body["model"], text, stream, bool(options.get("include_usage")), cap)


# ---- response --------------------------------------------------------------------------------------------


@dataclass
class Served:
    """One answered request, ready to format: the text, its finish_reason, the "emafusion" extra field and
    the tokens of every gateway call made for it."""

    text: str
    finish_reason: str
    extra: dict
    prompt_tokens: int
    completion_tokens: int

    @property
    def usage(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


def model_card(model_id: str, created: int) -> dict:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "emafusion"}


def model_list(created: int) -> dict:
    """The /v1/models body: the plain model and an example of a budget model."""
    return {"object": "list", "data": [model_card(MODEL_ID, created), model_card(f"{BUDGET_PREFIX}0.01", created)]}


def completion(chat: ChatRequest, served: Served, rid: str, created: int) -> dict:
    """A chat.completion body, plus the top-level "emafusion" field."""
    return {
        "id": rid, "object": "chat.completion", "created": created, "model": chat.model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": served.text},
                     "logprobs": None, "finish_reason": served.finish_reason}],
        "usage": served.usage,
        "emafusion": served.extra,
    }


def _pieces(text: str) -> list[str]:
    """Word-sized chunks that concatenate back to the text exactly."""
    return re.findall(r"\s*\S+|\s+", text) or [""]


def chunks(chat: ChatRequest, served: Served, rid: str, created: int) -> Iterator[str]:
    """The server-sent events of a streamed answer: a role chunk, word-sized content chunks, a final chunk
    with finish_reason and the "emafusion" field, a usage chunk if asked for, then `data: [DONE]`."""
    def event(choices, **more) -> str:
        payload = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": chat.model,
                   "system_fingerprint": None, "choices": choices, **more}
        return f"data: {json.dumps(payload)}\n\n"

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}])
    for piece in _pieces(served.text):
        yield event([{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": served.finish_reason}],
                emafusion=served.extra)
    if chat.include_usage:
        yield event([], usage=served.usage)
    yield "data: [DONE]\n\n"
