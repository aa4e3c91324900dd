"""The HTTP wiring of `emafusion serve`: the FastAPI app, its routes and error handlers. The wire format is in
openai.py, the answering in answer.py."""
from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import replace

from fastapi import FastAPI, Request as HTTPRequest
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..system import EMAFusionSystem
from .answer import Server
from .openai import (DEADLINE_HEADER, APIError, budget_of, chunks, completion, deadline_of, decode_body, error_body,
                     model_card, model_list, parse_chat_request)

MAX_BODY_BYTES = 1_000_000
CONFIG_ENV = "EMAFUSION_CONFIG"  # the config file of `emafusion serve --workers N` (read by each worker)
SELF_OPTIMISING_ENV = "EMAFUSION_SELF_OPTIMISING"  # `serve --self-optimising`, for the worker processes
SELF_OPTIMISING_PATH = "/v1/emafusion/self-optimising"


async def _read_body(request: HTTPRequest, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"request body of {declared} bytes is over the limit of {limit} bytes",
                       "invalid_request_error", None, "request_too_large")
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"request body is over the limit of {limit} bytes", "invalid_request_error",
                           None, "request_too_large")
        parts.append(chunk)
    return b"".join(parts)


def create_app(system: EMAFusionSystem, budget_usd: float | None = None, *,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The HTTP app over a built system.

    budget_usd: a USD cap for everything this server spends. None: the system client's own Budget (the
    config's budget_usd) is the server's budget. A number: a new Budget with that cap, on top of the
    client's own (a call must fit in both)."""
    server = Server(system, budget_usd)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        if server.loop is not None:  # fold what this worker has queued before it exits
            await run_in_threadpool(server.loop.flush)

    app = FastAPI(title="EMAFusion", description="OpenAI-compatible routing endpoint", docs_url=None,
                  redoc_url=None, lifespan=lifespan)
    app.state.server = server
    started = int(time.time())

    @app.exception_handler(APIError)
    async def _api_error(_request, exc: APIError):
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request, exc: StarletteHTTPException):
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_request, exc: Exception):
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}: {exc}", "server_error"),
                            status_code=500)

    @app.get("/health")
    async def health():
        b = server.budget
        t = b.totals()  # one read of the ledger: the totals of every process sharing it
        return {"status": "ok", "requests": server.requests, "pid": os.getpid(), "spent_usd": t.spent,
                "reserved_usd": t.reserved, "budget_usd": b.cap_usd,
                "remaining_usd": None if b.cap_usd is None else b.cap_usd - t.spent - t.reserved,
                "overshoot_usd": t.overshoot, "expired_usd": t.expired,
                "ledger": {"backend": b.ledger.backend, "name": b.ledger.name, "period": b.ledger.period},
                "models": [m.name for m in system.config.models], "router": system.point.router}

    @app.get(SELF_OPTIMISING_PATH)
    async def self_optimising():
        """Read-only: what the self-optimising loop changed (newest stored version; GET only, else 405)."""
        return await run_in_threadpool(server.self_optimising)

    @app.get("/v1/models")
    async def models():
        return model_list(started)

    @app.get("/v1/models/{model_id}")
    async def model(model_id: str):
        budget_of(model_id)
        return model_card(model_id, started)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: HTTPRequest):
        chat = parse_chat_request(decode_body(await _read_body(request, max_body_bytes)))
        chat.deadline_s = deadline_of(request.headers.get(DEADLINE_HEADER))
        served = await run_in_threadpool(server.answer, chat)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if chat.stream:
            return StreamingResponse(chunks(chat, served, rid, created), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return JSONResponse(completion(chat, served, rid, created))

    return app


def app_from_environment() -> FastAPI:
    """The app of the config file named by $EMAFUSION_CONFIG: the factory that uvicorn's worker processes
    import (`emafusion serve --workers N`). Each worker builds its own system; all share the response cache
    and the config's budget ledger, so they share one cap."""
    from ..config import load_config

    config = load_config(os.environ[CONFIG_ENV])
    if os.environ.get(SELF_OPTIMISING_ENV) == "1":
        config = replace(config, self_optimising=replace(config.self_optimising, enabled=True))
    system = EMAFusionSystem.build(config)
    warm_up(system)
    return create_app(system, None)


def warm_up(system: EMAFusionSystem) -> None:
    """Route one text and import litellm before serving: loading the encoder and litellm takes seconds, which
    a first request's deadline would otherwise pay. Routing calls no model unless the slow classifier is
    configured (and then it is paid for)."""
    from ..llm._litellm import litellm  # noqa: F401

    system.route("warm up")
