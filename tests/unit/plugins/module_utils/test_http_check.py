"""The health gate and the one request it repeats, against a real local HTTP server."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from ansible_collections.webstack.deploy.plugins.module_utils.http_check import gate, request


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture(scope="module")
def server():
    answers = {"/health": (200, {"version": "v2", "color": "green"}), "/broken": (503, {"status": "broken"})}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = answers.get(self.path, (404, {}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_request_reads_status_and_body(server):
    answer = request(server + "/health")
    assert answer["status"] == 200 and json.loads(answer["body"])["version"] == "v2"


def test_request_reports_a_refused_connection():
    answer = request("http://127.0.0.1:1/health", timeout=1)
    assert answer["status"] is None and "ConnectionRefused" in answer["error"]


def test_gate_passes_on_the_expected_fields(server):
    result = gate(lambda: request(server + "/health"), expect={"version": "v2", "color": "green"}, timeout=0)
    assert result["ok"] and result["attempts"] == 1 and result["problem"] is None


def test_gate_retries_until_the_deadline_and_says_why(server):
    clock = Clock()
    result = gate(lambda: request(server + "/broken"), timeout=3, interval=1, sleep=clock.sleep, clock=clock)
    assert not result["ok"] and result["attempts"] == 4
    assert result["problem"] == "HTTP 503 (expected 200)" and "broken" in result["body"]


def test_gate_waits_for_the_new_version():
    answers = iter(
        [
            {"status": None, "body": "", "error": "refused"},
            {"status": 200, "body": '{"version": "v1"}'},
            {"status": 200, "body": '{"version": "v2"}'},
        ]
    )
    clock = Clock()
    result = gate(lambda: next(answers), expect={"version": "v2"}, timeout=10, sleep=clock.sleep, clock=clock)
    assert result["ok"] and result["attempts"] == 3 and result["elapsed"] == 2
