"""Run a WSGI app (an emulator, moto, the API Gateway front) on 127.0.0.1 in a background thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class RunningServer:
    name: str
    server: BaseWSGIServer
    thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_in_thread(name: str, app: Any, port: int = 0) -> RunningServer:
    """Start ``app`` on 127.0.0.1 (port 0 picks a free one) and return once it accepts requests."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"sandbox-{name}", daemon=True)
    thread.start()
    return RunningServer(name=name, server=server, thread=thread)
