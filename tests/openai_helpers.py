"""Loopback servers for the openai backend's tests: a real ``transformers serve`` process, a
scripted fake OpenAI server, a recording (and optionally stream-cutting) proxy, and a socket that
answers garbage. Everything listens on 127.0.0.1 only; every wait is bounded."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# A real `transformers serve`
# --------------------------------------------------------------------------------------------


def write_tiny_checkpoint(out: Path) -> tuple[Path, str]:
    """The tiny synthetic checkpoint, written by `gptoss synthesize tiny --out DIR` when that
    command exists, else by the same writer (bench.models.synthetic) called directly.
    Returns (folder, how it was written)."""
    out = Path(out)
    if (Path(__file__).resolve().parents[1] / "bench" / "commands" / "synthesize.py").exists():
        proc = subprocess.run(
            [sys.executable, "-c", "from bench.cli import main; main()", "synthesize", "tiny", "--out", str(out)],
            capture_output=True, text=True, timeout=300, env=_offline_env(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"gptoss synthesize tiny failed: {proc.stderr[-2000:]}")
        return out, "gptoss synthesize tiny"
    from bench.models.synthetic import build

    build("tiny", out, progress=False, log=lambda msg: None)
    return out, "bench.models.synthetic.build"


def _offline_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", CUDA_VISIBLE_DEVICES="",
               TOKENIZERS_PARALLELISM="false", NO_PROXY="*", no_proxy="*")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    env.update(extra or {})
    return env


class ServeProcess:
    """`transformers serve CHECKPOINT` on 127.0.0.1:<free port>, CPU, offline, in its own process
    group (so stop() ends it and its children)."""

    def __init__(self, checkpoint: Path, workdir: Path, ready_timeout_s: float = 120.0):
        self.checkpoint = Path(checkpoint)
        self.workdir = Path(workdir)
        self.ready_timeout_s = ready_timeout_s
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "serve.log"
        self.started_in_s: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        hub_cache = self.workdir / "hub-cache"  # empty: /v1/models lists nothing, scans nothing
        hub_cache.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-c", "from transformers.cli.transformers import main; main()",
            "serve", str(self.checkpoint), "--host", HOST, "--port", str(self.port),
            "--device", "cpu", "--log-level", "warning",
        ]
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=_offline_env({"HF_HUB_CACHE": str(hub_cache), "HF_HOME": str(self.workdir / "hf-home")}),
                start_new_session=True,
            )
        deadline = t0 + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        self.started_in_s = time.monotonic() - t0
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"transformers serve was not ready within {self.ready_timeout_s:g} s:\n{self.log_tail()}")

    def ensure_running(self) -> None:
        if not self.running:
            self.port = free_port()
            self.start()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=15)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


# --------------------------------------------------------------------------------------------
# A scripted fake OpenAI server
# --------------------------------------------------------------------------------------------


def chunk(content: str | None = None, reasoning: str | None = None, finish: str | None = None,
          usage: dict | None = None, model: str = "fake-model", reasoning_field: str = "reasoning_content",
          choices: bool = True) -> dict:
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta[reasoning_field] = reasoning
    doc: dict[str, Any] = {"id": "x", "object": "chat.completion.chunk", "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []}
    if usage is not None:
        doc["usage"] = usage
    return doc


def sse(events: list, done: bool = True) -> bytes:
    out = b""
    for e in events:
        data = e if isinstance(e, (str, bytes)) else json.dumps(e)
        out += b"data: " + (data.encode() if isinstance(data, str) else data) + b"\n\n"
    if done:
        out += b"data: [DONE]\n\n"
    return out


def simple_stream(n: int, prompt_tokens: int | None = 50, finish: str = "length", usage: bool = True) -> bytes:
    events = [chunk(content=f"w{i} ") for i in range(n)]
    events.append(chunk(finish=finish))
    if usage:
        events.append(chunk(choices=False, usage={"prompt_tokens": prompt_tokens, "completion_tokens": n,
                                                  "total_tokens": (prompt_tokens or 0) + n}))
    return sse(events)


class FakeOpenAIServer:
    """An OpenAI-compatible server whose /chat/completions answer is ``handler(request) ->
    Reply``; records every request (path, headers, JSON body)."""

    def __init__(self, handler: Callable[[dict], "Reply"] | None = None, models: list[dict] | None = None,
                 models_status: int = 200, models_body: bytes | None = None):
        self.handler = handler or (lambda req: Reply(body=simple_stream(4)))
        self.models = models if models is not None else [{"id": "fake-model", "object": "model", "owned_by": "fakeengine"}]
        self.models_status = models_status
        self.models_body = models_body
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                fake._record(self, None)
                if self.path.endswith("/models"):
                    body = fake.models_body if fake.models_body is not None else json.dumps(
                        {"object": "list", "data": fake.models}).encode()
                    self.send_response(fake.models_status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                req = fake._record(self, body)
                reply = fake.handler(req)
                reply.send(self)

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _record(self, h: BaseHTTPRequestHandler, body: Any) -> dict:
        req = {"method": h.command, "path": h.path, "headers": dict(h.headers.items()), "body": body}
        with self._lock:
            self.requests.append(req)
        return req

    @property
    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Reply:
    """What the fake answers: a status, headers and a body (or raw bytes written after the
    status line, for broken framing), optionally in timed pieces, optionally closing early."""

    def __init__(self, status: int = 200, body: bytes = b"", content_type: str = "text/event-stream",
                 pieces: list[bytes] | None = None, pause_s: float = 0.0, hang_s: float = 0.0,
                 raw: bytes | None = None, headers: dict[str, str] | None = None):
        self.status, self.body, self.content_type = status, body, content_type
        self.pieces, self.pause_s, self.hang_s, self.raw = pieces, pause_s, hang_s, raw
        self.headers = headers or {}

    def send(self, h: BaseHTTPRequestHandler) -> None:
        try:
            if self.hang_s:
                time.sleep(self.hang_s)
                return
            if self.raw is not None:
                h.wfile.write(self.raw)
                h.wfile.flush()
                return
            h.send_response(self.status)
            if self.content_type:
                h.send_header("Content-Type", self.content_type)
            for k, v in self.headers.items():
                h.send_header(k, v)
            h.end_headers()
            for piece in self.pieces if self.pieces is not None else [self.body]:
                h.wfile.write(piece)
                h.wfile.flush()
                if self.pause_s:
                    time.sleep(self.pause_s)
        except (BrokenPipeError, ConnectionResetError):
            pass


# --------------------------------------------------------------------------------------------
# A recording proxy in front of the real server
# --------------------------------------------------------------------------------------------


class RecordingProxy:
    """Forwards to ``upstream`` (host, port), records each request, and re-sends the answer
    close-delimited. With ``cut_after_events=k`` it closes the answer after k SSE events."""

    def __init__(self, upstream_port: int, cut_after_events: int | None = None):
        self.upstream_port = upstream_port
        self.cut_after_events = cut_after_events
        self.requests: list[dict] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def _forward(self, body: bytes | None):
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
                proxy.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                                       "body": json.loads(body) if body else None})
                up = http.client.HTTPConnection(HOST, proxy.upstream_port, timeout=60)
                try:
                    up.request(self.command, self.path, body=body, headers=headers)
                    resp = up.getresponse()
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.getheader("Content-Type") or "application/octet-stream")
                    self.end_headers()
                    events = 0
                    buf = b""
                    cut = proxy.cut_after_events if "event-stream" in (resp.getheader("Content-Type") or "") else None
                    while True:
                        data = resp.read1(65536)
                        if not data:
                            break
                        if cut is None:
                            self.wfile.write(data)
                            self.wfile.flush()
                            continue
                        buf += data
                        while b"\n\n" in buf:
                            event, buf = buf.split(b"\n\n", 1)
                            self.wfile.write(event + b"\n\n")
                            self.wfile.flush()
                            events += 1
                            if events >= cut:
                                return  # close mid-stream
                finally:
                    up.close()

            def do_GET(self):
                self._forward(None)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self._forward(self.rfile.read(length))

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/v1"

    @property
    def chat_bodies(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["method"] == "POST"]

    def __enter__(self) -> "RecordingProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# A socket that answers garbage
# --------------------------------------------------------------------------------------------

GARBAGE = bytes(range(256)) * 4 + b"\x00\xff not http at all \r\n\r\n\x13\x37"


class GarbageServer:
    """Accepts a connection, reads what the client sends, writes junk bytes, closes."""

    def __init__(self, payload: bytes = GARBAGE):
        payload_ = payload

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(2)
                try:
                    self.request.recv(65536)
                    self.request.sendall(payload_)
                except OSError:
                    pass

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((HOST, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "GarbageServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def server_options(base_url: str, timeout: float, **kw):
    """The openai backend's options for a test server (a short --timeout)."""
    from bench.backends.openai.backend import OpenAIOptions

    kw.setdefault("request_timeout_s", timeout)
    return OpenAIOptions(base_url=base_url, **kw)


def server_key(defaults: dict, **kw):
    """A case key as `--backend openai` makes them (cache, quant and attn are "server")."""
    from bench.results import CaseKey

    return CaseKey(**{"mode": "fixed", "cache": "server", "quant": "server", "attn": "server", "concurrency": 1,
                      **defaults, **kw})
