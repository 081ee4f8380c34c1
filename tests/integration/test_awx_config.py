"""awx/: the controller configuration as data (awx/controller.yml) and the playbook that applies it.

No AWX server runs here (awx/README.md), so these tests check what can be checked without one:

* every job template's playbook exists in the repository;
* every survey variable is read by its playbook, and its default and each choice pass the argument spec of
  the role option it is handed to (``role_option``), or the type the playbook reads it as (``value_type``);
* the surveys are valid AWX survey items, credentials and inventories that templates name are defined,
  every environment's inventory source points at an inventory directory of the repository;
* the release workflow is backup -> deploy -> smoke test, with rollback on a failed deploy or smoke test;
* ``ansible-playbook --syntax-check awx/configure.yml``;
* ``awx/configure.yml --check`` against a stand-in controller: a small HTTP server that answers every lookup
  with an existing object and refuses nothing. That proves the awx.awx modules accept every option and value
  the playbook renders from the data (their argument specs run) and shows the rendered surveys and workflow
  nodes; it says nothing about how a real AWX would take them.

The variable names of the deploy, rollback, backup and restore playbooks are in ``EXPECTED_SURVEYS`` below:
renaming one is a one-line change there and in awx/controller.yml.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = yaml.safe_load((REPO_ROOT / "awx" / "controller.yml").read_text())
TEMPLATES = {t["name"]: t for t in DATA["awx_job_templates"]}
BY_PLAYBOOK = {t["playbook"]: t for t in DATA["awx_job_templates"]}

# What each playbook's survey asks, in order: the playbooks' variables.
EXPECTED_SURVEYS = {
    "site.yml": [],
    "playbooks/deploy.yml": ["app", "version"],
    "playbooks/rollback.yml": ["app", "restore", "restore_confirm"],
    "playbooks/backup.yml": ["backup_tag"],
    "playbooks/restore.yml": [
        "restore_host",
        "restore_job",
        "restore_label",
        "restore_target",
        "restore_confirm_overwrite",
    ],
    "playbooks/maintenance.yml": ["maintenance"],
    "playbooks/smoke_test.yml": [],
}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}

QUESTIONS = [
    pytest.param(template, question, id=f"{template.get('playbook', template['name'])}:{question['variable']}")
    for template in DATA["awx_job_templates"] + DATA["awx_workflows"]
    for question in template["survey"]
]


CONDITION_KEYS = re.compile(r"^(\s*)-?\s*(when|that|until|failed_when|changed_when):\s*(.*)$")


def playbook_expressions(playbook: str) -> str:
    """What the playbook (and the playbooks and task files it imports) evaluates: the Jinja expressions and
    the conditions (when, that, ...). Prose, task names and host patterns are left out: ``app`` is a survey
    variable and also a group of the inventories."""
    path = REPO_ROOT / playbook
    texts = [path.read_text()]
    for ref in re.findall(r"(?:import_playbook|import_tasks|include_tasks):\s*(\S+\.ya?ml)", texts[0]):
        candidate = (path.parent / ref).resolve()
        if candidate.is_file():
            texts.append(candidate.read_text())
    found: list[str] = []
    for text in texts:
        found += re.findall(r"\{\{.*?\}\}|\{%.*?%\}", text, flags=re.S)
        in_condition = None  # indentation of the condition key whose list items follow
        for line in text.splitlines():
            match = CONDITION_KEYS.match(line)
            indent = len(line) - len(line.lstrip())
            if match:
                found.append(match.group(3))
                in_condition = len(match.group(1))
            elif in_condition is not None and line.strip().startswith("- ") and indent > in_condition:
                found.append(line.strip()[2:])
            elif line.strip():
                in_condition = None
    # A name in a string literal ('app' as a default host pattern, a group lookup) is not a variable read.
    unquoted = (f.strip()[1:-1] if f.strip()[:1] in "'\"" and f.strip()[-1:] == f.strip()[:1] else f for f in found)
    return "\n".join(re.sub(r"'[^']*'|\"[^\"]*\"", "''", f) for f in unquoted)


def role_spec(role_option: str) -> tuple[str, dict]:
    """('option', its argument spec) for '<role>[:<entry point>].<option>'."""
    role_entry, option = role_option.split(".", 1)
    role, _, entry = role_entry.partition(":")
    specs = yaml.safe_load((REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"][entry or "main"]["options"]
    assert option in options, f"{role_option}: no such option in roles/{role}/meta/argument_specs.yml"
    return option, options[option]


def survey_values(question: dict) -> list:
    """The values a user can submit without typing: the default (when set) and every choice."""
    values = list(question.get("choices", []))
    if question.get("default") not in (None, ""):
        values.insert(0, question["default"])
    return values


def test_every_playbook_has_a_job_template():
    assert sorted(BY_PLAYBOOK) == sorted(EXPECTED_SURVEYS)


@pytest.mark.parametrize(
    "playbook", sorted({t["playbook"] for t in DATA["awx_job_templates"] + DATA["awx_callback_templates"]})
)
def test_job_template_playbook_exists(playbook: str):
    assert (REPO_ROOT / playbook).is_file(), f"{playbook} is named by awx/controller.yml but is not in the repository"


@pytest.mark.parametrize(("playbook", "variables"), sorted(EXPECTED_SURVEYS.items()))
def test_survey_asks_exactly_the_playbook_variables(playbook: str, variables: list[str]):
    assert [q["variable"] for q in BY_PLAYBOOK[playbook]["survey"]] == variables


@pytest.mark.parametrize(("template", "question"), QUESTIONS)
def test_survey_question_is_a_valid_awx_item(template: dict, question: dict):
    assert question["type"] in SURVEY_TYPES
    assert question["question_name"]
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", question["variable"])
    if question["type"] in ("multiplechoice", "multiselect"):
        assert question["choices"], "a choice question needs choices"
        assert question.get("default", question["choices"][0]) in question["choices"]
    if question["required"]:
        assert question.get("default") in (None, "") or question["type"] == "multiplechoice"


@pytest.mark.parametrize(("template", "question"), QUESTIONS)
def test_survey_variable_is_read_by_the_playbook(template: dict, question: dict):
    playbooks = [template["playbook"]] if "playbook" in template else [
        TEMPLATES[node["job_template"]]["playbook"] for node in template["nodes"]
    ]  # fmt: skip
    missing = [p for p in playbooks if not (REPO_ROOT / p).is_file()]
    assert not missing, f"playbooks not in the repository: {missing}"
    pattern = re.compile(rf"\b{question['variable']}\b")
    assert any(pattern.search(playbook_expressions(p)) for p in playbooks), (
        f"{question['variable']} is asked by the survey of {template['name']} but no playbook of it reads it"
    )


@pytest.mark.parametrize(("template", "question"), QUESTIONS)
def test_survey_values_pass_the_argument_spec(template: dict, question: dict):
    if "role_option" in question:
        option, spec = role_spec(question["role_option"])
        spec = {k: v for k, v in spec.items() if k in ("type", "elements", "choices", "options")}
    elif "value_type" in question:
        option, spec = question["variable"], {"type": question["value_type"]}
    else:
        assert question["type"] in ("text", "textarea", "password"), "a choice question needs role_option or value_type"
        return
    validator = ArgumentSpecValidator({option: spec})
    for value in survey_values(question):
        result = validator.validate({option: value})
        assert not result.error_messages, f"{question['variable']}={value!r}: {result.error_messages}"


def test_credentials_and_inventories_named_are_defined():
    credentials = {c["name"] for c in DATA["awx_credentials"]}
    assert {c["credential_type"] for c in DATA["awx_credentials"]} == {"Machine", "Amazon Web Services", "Vault"}
    for template in DATA["awx_job_templates"] + DATA["awx_callback_templates"]:
        assert set(template["credentials"]) <= credentials, template["name"]
    inventories = {f"webstack-{env}" for env in DATA["awx_environments"]}
    assert DATA["awx_default_inventory"] in inventories


@pytest.mark.parametrize("env", DATA["awx_environments"])
def test_inventory_source_is_a_repository_inventory(env: str):
    assert (REPO_ROOT / "inventories" / env).is_dir()
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", f"inventories/{env}", "--graph"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": str(Path(sys.executable).parent), "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
             "HOME": str(Path.home()), "AWS_URL": "http://127.0.0.1:9"},  # no AWS: static groups only
    )  # fmt: skip
    assert "@aws_control" in out.stdout, out.stdout + out.stderr


def test_callback_template_converges_with_site():
    (callback,) = DATA["awx_callback_templates"]
    assert callback["playbook"] == "site.yml"
    configure = (REPO_ROOT / "awx" / "configure.yml").read_text()
    assert "host_config_key:" in configure


def test_release_workflow_is_backup_deploy_smoke_test_rollback_on_failure():
    (workflow,) = DATA["awx_workflows"]
    nodes = {n["identifier"]: n for n in workflow["nodes"]}
    playbook = {i: TEMPLATES[n["job_template"]]["playbook"] for i, n in nodes.items()}
    edges = {
        (i, kind, j) for i, n in nodes.items() for kind in ("success", "failure", "always") for j in n.get(kind, [])
    }
    assert edges == {
        ("backup", "success", "deploy"),
        ("deploy", "success", "smoke_test"),
        ("deploy", "failure", "rollback"),
        ("smoke_test", "failure", "rollback"),
    }
    assert playbook == {
        "backup": "playbooks/backup.yml",
        "deploy": "playbooks/deploy.yml",
        "smoke_test": "playbooks/smoke_test.yml",
        "rollback": "playbooks/rollback.yml",
    }
    # The node's extra data is accepted by AWX only for variables the template's survey asks.
    for identifier, node in nodes.items():
        asked = {q["variable"] for q in TEMPLATES[node["job_template"]]["survey"]}
        assert set(node.get("extra_data", {})) <= asked, identifier
    # The workflow asks what deploy needs; backup and rollback get it too.
    asked = {q["variable"] for q in workflow["survey"]}
    assert {"app", "version", "backup_tag"} <= asked


def test_configure_playbook_syntax():
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check", "awx/configure.yml"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


class StandInController(BaseHTTPRequestHandler):
    """Every list lookup finds one object of that name; writes are recorded (check mode must make none)."""

    writes: ClassVar[list[str]] = []

    def log_message(self, *args) -> None:
        pass

    def send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-API-Product-Name", "AWX")
        self.send_header("X-API-Product-Version", "24.6.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        match = re.match(r"^/api/v2/([a-z_]+)/(?:(\d+)/)?([a-z_]+/)?$", url.path)
        if not match or match.group(3):
            self.send({"count": 0, "next": None, "results": []})
            return
        kind, ident = match.group(1), match.group(2)
        item = {
            "id": 1,
            "name": parse_qs(url.query).get("name", ["existing"])[0],
            "type": kind.rstrip("s"),
            "url": f"/api/v2/{kind}/1/",
            "kind": "",
            "related": {r: f"/api/v2/{kind}/1/{r}/" for r in ("survey_spec", "workflow_nodes", "credentials")},
            "summary_fields": {},
        }
        self.send(item if ident else {"count": 1, "next": None, "results": [item]})

    def do_POST(self) -> None:
        self.writes.append(f"{self.command} {self.path}")
        self.send({})

    do_PATCH = do_DELETE = do_PUT = do_POST


@pytest.fixture(scope="module")
def stand_in_controller() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInController)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def configure_check(stand_in_controller: str) -> dict[str, list[dict]]:
    """awx/configure.yml --check with the example secrets; task name -> results (one per loop item)."""
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        CONTROLLER_HOST=stand_in_controller,
        CONTROLLER_OAUTH_TOKEN="fake-token",
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "awx/configure.yml", "--check", "--diff",
         "-e", "@awx/secrets.example.yml"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report = json.loads(proc.stdout[proc.stdout.index("{") :])
    results = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"]["localhost"]
            results[task["task"]["name"]] = result.get("results", [result])
    failed = {name: [r.get("msg") for r in rs if r.get("failed")] for name, rs in results.items()}
    assert proc.returncode == 0, {k: v for k, v in failed.items() if v} or proc.stderr[-3000:]
    assert StandInController.writes == [], "check mode wrote to the controller"
    return results


def test_configure_check_mode_renders_every_template_and_survey(configure_check: dict):
    sent = {r["item"]["name"]: r["invocation"]["module_args"] for r in configure_check["Create the job templates"]}
    assert sorted(sent) == sorted(TEMPLATES)
    for name, args in sent.items():
        template = TEMPLATES[name]
        assert args["playbook"] == template["playbook"]
        assert args["project"] == DATA["awx_project"]["name"]
        assert args["ask_inventory_on_launch"] is True
        if template["survey"]:
            assert args["survey_enabled"] is True
            expected = [
                {k: v for k, v in q.items() if k not in ("role_option", "value_type")} for q in template["survey"]
            ]
            assert args["survey_spec"]["spec"] == expected
        else:
            assert args["survey_enabled"] is False


def test_configure_check_mode_sends_a_callback_template_per_environment(configure_check: dict):
    results = configure_check["Create the provisioning callback templates, one per environment"]
    assert len(results) == len(DATA["awx_environments"]) * len(DATA["awx_callback_templates"])
    assert all(r.get("changed") for r in results)  # no_log hides the arguments (they hold the host config key)


def test_configure_check_mode_renders_the_workflow_graph(configure_check: dict):
    (result,) = configure_check["Create the workflows"]
    nodes = {n["identifier"]: n for n in result["invocation"]["module_args"]["workflow_nodes"]}
    (workflow,) = DATA["awx_workflows"]
    assert sorted(nodes) == sorted(n["identifier"] for n in workflow["nodes"])
    for node in workflow["nodes"]:
        sent = nodes[node["identifier"]]
        assert sent["unified_job_template"]["name"] == node["job_template"]
        assert sent["unified_job_template"]["type"] == "job_template"
        for kind in ("success", "failure", "always"):
            assert [n["identifier"] for n in sent["related"][f"{kind}_nodes"]] == node.get(kind, [])
    assert nodes["rollback"].get("extra_data", {}) == {}
