"""A scripted OpenAI-compatible server on aiohttp: every streamed answer holds a known latency.

Each chat completion waits ``--ttft`` seconds, then streams ``max_tokens`` one-token chunks
(``--tokens`` overrides it) ``--itl`` seconds apart, a finish chunk, a usage chunk and ``[DONE]``.
With ``--ttft 0 --itl 0`` it answers at once: the server against which the load generator's own
ceiling is measured. Run in its own process (``python tests/scripted_server.py --port P``) so
its work does not share an interpreter with the client under test; ``ScriptedServer`` starts
and stops it from a test. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
MODEL = "scripted-model"


def make_app(ttft: float, itl: float, tokens: int | None):
    from aiohttp import web

    async def models(request):
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "scripted"}]})

    async def chat(request):
        body = await request.json()
        n = tokens or int(body.get("max_tokens") or 16)
        words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        if ttft:
            await asyncio.sleep(ttft)
        for i in range(n):
            if i and itl:
                await asyncio.sleep(itl)
            delta = {"id": "s", "object": "chat.completion.chunk", "model": MODEL,
                     "choices": [{"index": 0, "delta": {"content": "w "}, "finish_reason": None}]}
            await resp.write(b"data: " + json.dumps(delta).encode() + b"\n\n")
        done = {"id": "s", "object": "chat.completion.chunk", "model": MODEL,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
        usage = {"id": "s", "object": "chat.completion.chunk", "model": MODEL, "choices": [],
                 "usage": {"prompt_tokens": 20 + words, "completion_tokens": n, "total_tokens": 20 + words + n}}
        await resp.write(b"data: " + json.dumps(done).encode() + b"\n\ndata: " + json.dumps(usage).encode()
                         + b"\n\ndata: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def health(request):
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    return app


class ScriptedServer:
    """The scripted server in a child process on a free loopback port."""

    def __init__(self, ttft: float = 0.0, itl: float = 0.0, tokens: int | None = None):
        from tests.openai_helpers import free_port

        self.args = ["--ttft", str(ttft), "--itl", str(itl)] + (["--tokens", str(tokens)] if tokens else [])
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def __enter__(self) -> "ScriptedServer":
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--port", str(self.port), *self.args],
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the scripted server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("the scripted server did not start within 30 s")

    def __exit__(self, *exc) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--itl", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--tokens", type=int, default=None, help="tokens per answer (default: max_tokens)")
    args = parser.parse_args()
    from aiohttp import web

    web.run_app(make_app(args.ttft, args.itl, args.tokens), host=HOST, port=args.port, print=None,
                access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
