"""awx/: the controller configuration as data (awx/controller.yml) and the playbook that applies it.

No AWX server runs here (awx/README.md), so these tests check what can be checked without one:

* every job template's playbook exists in the repository;
* every survey variable is read by its playbook, and its default and each choice pass the argument spec of
  the role option it is handed to (``role_option``), or the type the playbook reads it as (``value_type``);
* the surveys are valid AWX survey items, credentials and inventories that templates name are defined,
  every environment's inventory source points at an inventory directory of the repository;
* the release workflow is backup -> deploy -> smoke test, with rollback on a failed deploy or smoke test;
* ``ansible-playbook --syntax-check awx/configure.yml``.

The variable names of the deploy, rollback, backup and restore playbooks are in ``EXPECTED_SURVEYS`` below:
renaming one is a one-line change there and in awx/controller.yml.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
    "playbooks/restore.yml": ["snapshot", "target"],
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
    return "\n".join(re.sub(r"groups\[['\"][^'\"]*['\"]\]", "", f) for f in found)


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
