"""Serve an ASGI app (the MCP SDK's streamable HTTP endpoint) from the WSGI emulator.

The sandbox's servers are WSGI (werkzeug, sandbox/server.py) and the Ignition emulator is Flask;
the MCP SDK's server side is ASGI. Rather than a second port, requests to ``/mcp`` are handed to
the ASGI app on one event loop in a background thread, which also holds the app's lifespan (the
session manager's task group) open. The MCP endpoint runs stateless with JSON responses, so every
answer is one complete body: no stream has to cross the bridge.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.types import ASGIApp, Message

# Not passed on: the WSGI server sets its own framing.
_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive"}


class AsgiBridge:
    def __init__(
        self,
        app: ASGIApp,
        lifespan: Callable[[], AbstractAsyncContextManager[Any]],
        *,
        name: str = "asgi-bridge",
        timeout_seconds: float = 60.0,
    ) -> None:
        self._app = app
        self._timeout = timeout_seconds
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        started = threading.Event()
        self._closing: asyncio.Event | None = None

        async def hold() -> None:
            self._closing = asyncio.Event()
            async with lifespan():
                started.set()
                await self._closing.wait()

        self._held = asyncio.run_coroutine_threadsafe(hold(), self._loop)
        if not started.wait(timeout=10):
            raise RuntimeError(f"{name}: the ASGI app's lifespan did not start")

    def close(self) -> None:
        closing = self._closing
        if closing is not None:
            self._loop.call_soon_threadsafe(closing.set)
            self._held.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def handle(
        self, method: str, path: str, query: bytes, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request through the ASGI app; its status, headers and whole body."""
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 80),
        }
        future = asyncio.run_coroutine_threadsafe(self._call(scope, body), self._loop)
        return future.result(timeout=self._timeout)

    async def _call(self, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        delivered = False
        done = asyncio.Event()
        status = 500
        response_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()  # the client "disconnects" once the answer is complete
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for key, value in message.get("headers", []):
                    name = key.decode("latin-1")
                    if name.lower() not in _HOP_BY_HOP:
                        response_headers.append((name, value.decode("latin-1")))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        try:
            await self._app(scope, receive, send)
        finally:
            done.set()
        return status, response_headers, b"".join(chunks)
