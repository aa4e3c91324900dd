"""Shared pieces of the gateway tests (a module with a unique name, importable from test files)."""
from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from emafusion_core.llm import RetryPolicy

MODEL = "openai/smollm2"
SMOL_PRICES = {MODEL: (100.0, 300.0)}  # made-up USD per million tokens, so that costs are visible
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.02, max_delay_s=0.1)


class CountingProxy:
    """A loopback reverse proxy that really counts: requests, the ones forwarded upstream, the most in flight
    at once, and the Authorization headers it saw. Canned responses, when queued, are served instead of
    forwarding, to produce provider failures a local model server cannot (429 + Retry-After, garbage)."""

    def __init__(self, upstream: str | None = None):
        self.upstream = urlsplit(upstream) if upstream else None
        self.canned: list[tuple[int, dict, bytes]] = []
        self.lock = threading.Lock()
        self.reset()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                proxy._handle(self, None)

            def do_POST(self):
                proxy._handle(self, self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def reset(self) -> None:
        with self.lock:
            self.requests = self.forwarded = self.inflight = self.max_inflight = 0
            self.auth_headers: list[str] = []
            self.bodies: list[dict] = []
            self.canned.clear()

    def queue(self, status: int, body: bytes | str, headers: dict | None = None, times: int = 1) -> None:
        body = body.encode() if isinstance(body, str) else body
        self.canned.extend([(status, {"Content-Type": "application/json", **(headers or {})}, body)] * times)

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        completion = handler.path.endswith("/chat/completions")
        with self.lock:
            if completion:
                self.requests += 1
                self.inflight += 1
                self.max_inflight = max(self.max_inflight, self.inflight)
                self.auth_headers.append(handler.headers.get("Authorization", ""))
                self.bodies.append(json.loads(body or b"{}"))
            canned = self.canned.pop(0) if completion and self.canned else None
        try:
            if canned is None:
                status, headers, payload = self._forward(handler, body)
                if completion:
                    with self.lock:
                        self.forwarded += 1
            else:
                status, headers, payload = canned
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        finally:
            if completion:
                with self.lock:
                    self.inflight -= 1

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes | None):
        if self.upstream is None:
            return 502, {"Content-Type": "text/plain"}, b"no upstream"
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        try:
            headers = {"Content-Type": handler.headers.get("Content-Type", "application/json")}
            conn.request(handler.command, handler.path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            return response.status, {"Content-Type": response.getheader("Content-Type", "application/json")}, payload
        finally:
            conn.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
