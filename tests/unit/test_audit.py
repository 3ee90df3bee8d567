"""``make audit`` decides between auditing and skipping by asking PyPI's JSON API about one locked
release; here that API is a local HTTP server playing each answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tools import audit


class _Answer:
    status = 200
    body = b"{}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(_Answer.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(_Answer.body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def json_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Answer]]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(
        audit, "JSON_API", f"http://127.0.0.1:{server.server_port}/pypi/{{name}}/{{version}}/json"
    )
    yield _Answer
    server.shutdown()


def test_given_a_mirror_without_the_json_api_when_auditing_then_skipped_with_the_reason_and_success(
    json_api: type[_Answer], capsys: pytest.CaptureFixture[str]
) -> None:
    json_api.status, json_api.body = 404, b"{}"

    assert audit.main() == 0
    out = capsys.readouterr().out
    assert "SKIPPED" in out and "HTTP 404" in out


def test_given_no_network_when_auditing_then_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(audit, "JSON_API", "http://127.0.0.1:9/pypi/{name}/{version}/json")  # discard port

    assert audit.main() == 0
    assert "cannot be reached" in capsys.readouterr().out


def test_given_the_json_api_with_vulnerability_data_when_probed_then_the_audit_runs(
    json_api: type[_Answer],
) -> None:
    json_api.status, json_api.body = 200, json.dumps({"info": {}, "vulnerabilities": []}).encode()

    assert audit.unavailable_reason() is None
    json_api.body = json.dumps({"info": {}}).encode()  # an answer without advisories is no audit
    assert audit.unavailable_reason() == "PyPI's JSON API answered without vulnerability data"
