"""upstream_switch, bluegreen_rollback and bluegreen_status, run as Ansible runs them, against a temporary
live-colour directory, release records and real local HTTP servers standing in for the colours and nginx."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.webstack.deploy.plugins.modules import bluegreen_rollback, bluegreen_status, upstream_switch


class Colour:
    """A colour of an app on a free port, answering /health with its version and colour."""

    def __init__(self, version, colour, status=200):
        self.answer = (status, {"status": "ok", "version": version, "color": colour})
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = owner.answer
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def colours():
    made = []

    def make(version, colour, status=200):
        made.append(Colour(version, colour, status))
        return made[-1]

    yield make
    for c in made:
        c.close()


def run(module, args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        module.main()
    return exited.value.code, json.loads(capsys.readouterr().out)


def test_switch_writes_the_live_colour_and_reports(tmp_path, colours, capsys):
    (tmp_path / "api").write_text("blue\n")
    green = colours("v2", "green")
    rc, out = run(
        upstream_switch,
        {
            "app": "api",
            "colour": "green",
            "live_dir": str(tmp_path),
            "probe_url": f"http://127.0.0.1:{green.port}/health",
            "probe_expect": {"version": "v2"},
            "verify_url": f"http://127.0.0.1:{green.port}/health",
            "verify_expect": {"version": "v2", "color": "green"},
        },
        capsys,
    )
    assert rc == 0 and out["changed"] and (out["previous_colour"], out["colour"]) == ("blue", "green")
    assert (tmp_path / "api").read_text() == "green\n"
    rc, out = run(upstream_switch, {"app": "api", "colour": "green", "live_dir": str(tmp_path)}, capsys)
    assert rc == 0 and not out["changed"]


def test_switch_refuses_a_colour_that_is_not_ready(tmp_path, colours, capsys):
    (tmp_path / "api").write_text("blue\n")
    green = colours("v1", "green")
    rc, out = run(
        upstream_switch,
        {
            "app": "api",
            "colour": "green",
            "live_dir": str(tmp_path),
            "probe_url": f"http://127.0.0.1:{green.port}/health",
            "probe_expect": {"version": "v2"},
        },
        capsys,
    )
    assert rc == 1 and "version is 'v1' (expected 'v2')" in out["msg"] and "still sends api to blue" in out["msg"]
    assert (tmp_path / "api").read_text() == "blue\n"


def test_switch_goes_back_when_nginx_does_not_answer_from_the_colour(tmp_path, colours, capsys):
    (tmp_path / "api").write_text("blue\n")
    nginx = colours("v1", "blue")  # still answers from blue
    rc, out = run(
        upstream_switch,
        {
            "app": "api",
            "colour": "green",
            "live_dir": str(tmp_path),
            "verify_url": f"http://127.0.0.1:{nginx.port}/health",
            "verify_expect": {"color": "green"},
            "verify_timeout": 0.5,
        },
        capsys,
    )
    assert rc == 1 and "nginx sends api to blue again" in out["msg"] and not out["changed"]
    assert (tmp_path / "api").read_text() == "blue\n"


def test_switch_in_check_mode_writes_nothing(tmp_path, capsys):
    (tmp_path / "api").write_text("blue\n")
    rc, out = run(
        upstream_switch,
        {"app": "api", "colour": "green", "live_dir": str(tmp_path), "_ansible_check_mode": True},
        capsys,
    )
    assert rc == 0 and out["changed"] and (tmp_path / "api").read_text() == "blue\n"


def record(tmp_path, app, event="release"):
    data = {
        "app": app,
        "event": event,
        "at": "t1",
        "colour": "green",
        "version": "v2",
        "image": "i:v2",
        "port": 2,
        "previous": {"colour": "blue", "version": "v1", "image": "i:v1", "port": 1},
        "history": [],
    }
    (tmp_path / "state" / f"{app}.json").write_text(json.dumps(data))


def test_rollback_switches_warm_apps_first_and_records(tmp_path, colours, capsys):
    (tmp_path / "state").mkdir()
    (tmp_path / "live").mkdir()
    blue = colours("v1", "blue")
    record(tmp_path, "api")
    record(tmp_path, "cold")
    record(tmp_path, "done", event="rollback")
    args = {
        "apps": [
            {"name": "api", "colour_ports": {"blue": blue.port, "green": 1}, "health_path": "/health"},
            {"name": "cold", "colour_ports": {"blue": 9, "green": 1}, "health_path": "/health"},
            {"name": "done", "colour_ports": {"blue": 9, "green": 1}},
            {"name": "new", "colour_ports": {"blue": 9, "green": 1}},
        ],
        "state_dir": str(tmp_path / "state"),
        "live_dir": str(tmp_path / "live"),
        "keep_previous_seconds": 60,
        "by": "ops",
    }
    rc, out = run(bluegreen_rollback, args, capsys)
    assert rc == 0 and out["changed"]
    results = {name: r["result"] for name, r in out["apps"].items()}
    assert results == {"api": "rolled_back", "cold": "needs_start", "done": "already", "new": "no_previous"}
    assert (tmp_path / "live" / "api").read_text() == "blue\n"
    assert not (tmp_path / "live" / "cold").exists()
    saved = json.loads((tmp_path / "state" / "api.json").read_text())
    assert (saved["event"], saved["colour"], saved["version"], saved["by"]) == ("rollback", "blue", "v1", "ops")
    assert saved["previous"] == {"colour": "green", "version": "v2", "image": "i:v2", "port": 2}
    assert saved["previous_stops_at"] is not None
    # Again: nothing to do.
    rc, out = run(bluegreen_rollback, args, capsys)
    assert out["apps"]["api"]["result"] == "already" and not out["changed"]


@pytest.mark.parametrize(
    ("summary", "error"),
    [
        ({"backup": {"label": "pre-release-api-v2-1"}}, "restore_confirm must equal the label of the backup "),
        ({"backup": {}}, "restore_confirm: nothing to confirm against on this host: "),
        (None, "is missing. Nothing was changed."),
    ],
    ids=["another-label", "no-backup", "no-record"],
)
def test_rollback_with_a_confirmation_that_does_not_match_changes_nothing(tmp_path, colours, capsys, summary, error):
    for d in ("state", "live", "summaries"):
        (tmp_path / d).mkdir()
    blue = colours("v1", "blue")
    record(tmp_path, "api")
    if summary is not None:
        (tmp_path / "summaries" / "api.json").write_text(json.dumps(summary))
    before = (tmp_path / "state" / "api.json").read_text()
    args = {
        "apps": [{"name": "api", "colour_ports": {"blue": blue.port, "green": 1}}],
        "state_dir": str(tmp_path / "state"),
        "live_dir": str(tmp_path / "live"),
        "confirm": {
            "path": str(tmp_path / "summaries" / "api.json"),
            "field": "backup.label",
            "value": "pre-release-api-v0-1",
            "name": "restore_confirm",
            "what": "label of the backup",
        },
    }
    rc, out = run(bluegreen_rollback, args, capsys)
    assert rc == 1 and out["failed"] and error in out["msg"], out
    assert "Nothing was changed" in out["msg"] and "confirmed" not in out
    assert not (tmp_path / "live" / "api").exists()
    assert (tmp_path / "state" / "api.json").read_text() == before
    # The matching label: the switch goes ahead and the file comes back for what follows.
    if summary and summary["backup"]:
        args["confirm"]["value"] = "pre-release-api-v2-1"
        rc, out = run(bluegreen_rollback, args, capsys)
        assert rc == 0 and out["apps"]["api"]["result"] == "rolled_back" and out["confirmed"] == summary
        assert (tmp_path / "live" / "api").read_text() == "blue\n"


def test_status_without_docker_reports_absent_containers(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker here
    (tmp_path / "api.json").write_text('{"version": "v1"}')
    (tmp_path / "api").write_text("green\n")
    rc, out = run(
        bluegreen_status, {"apps": ["api", "new"], "state_dir": str(tmp_path), "live_dir": str(tmp_path)}, capsys
    )
    assert rc == 0 and not out["changed"]
    assert out["apps"]["api"]["record"] == {"version": "v1"} and out["apps"]["api"]["live"] == "green"
    assert out["apps"]["new"] == {
        "record": None,
        "containers": {
            c: {"exists": False, "running": False, "image": None, "version": None, "digest": None}
            for c in ("blue", "green")
        },
        "live": "",
    }
