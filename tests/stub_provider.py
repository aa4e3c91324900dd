"""A stub OpenAI-compatible provider on 127.0.0.1, run as its own process (so a test can freeze it with
SIGSTOP or kill it): `python tests/stub_provider.py PORT`. It answers every chat completion with "42" and an
honest-looking usage, and counts what it served. POST /control {"mode": ..., "delay_s": ...} changes how it
answers from then on:

  ok        200, a normal reply (after delay_s seconds)
  garbage   200 whose body is not JSON
  empty     200 with an empty message (a failure the gateway must not cache as a success)
  429       429 rate limit with Retry-After: 0
  overflow  400 context_length_exceeded (OpenAI's wording)
  500       500 server error

GET /stats -> {"requests": n, "by_mode": {...}}.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"mode": "ok", "delay_s": 0.0, "requests": 0, "by_mode": {}}
LOCK = threading.Lock()


def _reply(body: dict, text: str) -> dict:
    prompt = sum(len(str(m.get("content", "")).encode()) for m in body.get("messages", [])) // 4 + 8
    return {"id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 2, "total_tokens": prompt + 2}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, payload: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        with LOCK:
            self._send(200, json.dumps({k: STATE[k] for k in ("mode", "requests", "by_mode")}).encode())

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/control":
            with LOCK:
                STATE.update({k: body[k] for k in ("mode", "delay_s") if k in body})
            return self._send(200, b"{}")
        with LOCK:
            mode, delay = STATE["mode"], STATE["delay_s"]
            STATE["requests"] += 1
            STATE["by_mode"][mode] = STATE["by_mode"].get(mode, 0) + 1
        if delay:
            time.sleep(delay)
        if mode == "ok":
            return self._send(200, json.dumps(_reply(body, "42")).encode())
        if mode == "empty":
            return self._send(200, json.dumps(_reply(body, "")).encode())
        if mode == "garbage":
            return self._send(200, b"<html>not json{{")
        if mode == "429":
            return self._send(429, json.dumps({"error": {"message": "Rate limit reached", "type": "rate_limit_error",
                                                          "code": "rate_limit_exceeded"}}).encode(),
                              {"Retry-After": "0"})
        if mode == "overflow":
            return self._send(400, json.dumps({"error": {
                "message": "This model's maximum context length is 2048 tokens. However, your messages resulted "
                           "in 9000 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}).encode())
        return self._send(500, json.dumps({"error": {"message": "internal", "type": "server_error"}}).encode())

    def log_message(self, *args):
        pass


def main(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
