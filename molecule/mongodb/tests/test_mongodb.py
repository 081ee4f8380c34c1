"""What the mongodb role leaves on a host, as far as it runs without mongod.

No mongod exists on this host (none can be installed where the collection is
tested): the scenario converges with mongodb_packages_install false and the
tasks that need mongod skipped (tag mongodb_server). These tests read what
apt, systemd and mongod's configuration parser would read, run the role again
in check and diff mode for its plan of replica set, users and indexes, feed
it bad input, and run it without the skip to see it stop on the missing mongod.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from ansible_collections.webstack.deploy.plugins.filter.mongodb import mongodb_config_errors

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
SCENARIO_DIR = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
HOST = f"{os.environ.get('WEBSTACK_RUN_ID', 'molecule')}-{os.environ.get('MOLECULE_SCENARIO_NAME', 'mongodb')}-bookworm"
KEY = "bW9sZWN1bGUtZmFrZS1rZXlmaWxlLWZvci10ZXN0cy1vbmx5"
OTHER_KEY = "b3RoZXItbW9sZWN1bGUtZmFrZS1rZXlmaWxlLWNoYW5nZWQ="
SECRETS = (
    KEY,
    OTHER_KEY,
    "molecule-fake-admin-password",
    "molecule-fake-api-password",
    "molecule-fake-reports-password",
)
# Facts of this verify run only (an earlier run's host had another address).
FACTS = tempfile.mkdtemp(prefix="verify-facts-", dir=EPHEMERAL)
OWNED = ("/etc/mongod.conf", "/etc/mongodb/keyfile", "/etc/systemd/system/mongod.service.d/limits.conf")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def converge(*args: str, skip_server: bool = True, extra: dict | None = None) -> tuple[int, dict, str]:
    """Run the scenario's converge.yml against its host as an operator would; the JSON callback's report."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(EPHEMERAL / "inventory")
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PIPELINING="true",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        # Facts gathered once for all of these runs.
        ANSIBLE_GATHERING="smart",
        ANSIBLE_CACHE_PLUGIN="ansible.builtin.jsonfile",
        ANSIBLE_CACHE_PLUGIN_CONNECTION=FACTS,
    )
    env.pop("ANSIBLE_SKIP_TAGS", None)
    if skip_server:
        env["ANSIBLE_SKIP_TAGS"] = "mongodb_server"
    cmd = ["ansible-playbook", "-i", inventory, str(SCENARIO_DIR / "converge.yml"), *args]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    proc = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"ansible-playbook printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, report, proc.stdout + proc.stderr


def task_results(report: dict) -> dict[str, dict]:
    """Task name (without the role prefix) -> this host's result."""
    out = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            if HOST in task["hosts"]:
                out[task["task"]["name"]] = task["hosts"][HOST]
    return out


def fingerprint(host) -> dict[str, str]:
    return {path: host.file(path).sha256sum for path in OWNED}


# ---------------------------------------------------------------- what converged


def test_apt_reads_the_signed_repository_entry(host):
    sources = host.file("/etc/apt/sources.list.d/mongodb-org-7.0.sources")
    assert sources.user == "root" and sources.mode == 0o644
    assert "Signed-By: /etc/apt/keyrings/mongodb-server-7.0.asc" in sources.content_string
    # apt parses the entry into the indexes it would fetch (it cannot fetch them here).
    uris = host.check_output("apt-get update --print-uris")
    assert "https://repo.mongodb.org/apt/debian/dists/bookworm/mongodb-org/7.0/InRelease" in uris
    assert "mongodb-org/7.0/main/binary-amd64/Packages" in uris
    # The keyring holds exactly the key given (the scenario's throwaway key, not MongoDB's).
    keyring = host.file("/etc/apt/keyrings/mongodb-server-7.0.asc")
    assert keyring.mode == 0o644
    shown = host.check_output("gpg --batch --with-colons --show-keys /etc/apt/keyrings/mongodb-server-7.0.asc")
    fingerprints = [line.split(":")[9] for line in shown.splitlines() if line.startswith("fpr:")]
    assert fingerprints[0] == (EPHEMERAL / "test-signing-key.fpr").read_text().strip()
    pin = host.file("/etc/apt/preferences.d/mongodb-org.pref").content_string
    assert "Package: mongodb-org mongodb-org-*\nPin: version 7.0.14\nPin-Priority: 1001" in pin


def test_account_and_directories(host):
    user = host.user("mongodb")
    assert user.exists and user.uid < 1000
    assert user.group == "mongodb"
    assert user.shell == "/usr/sbin/nologin"
    for path, owner in (("/srv/mongodb", "mongodb"), ("/var/log/mongodb", "mongodb"), ("/etc/mongodb", "root")):
        d = host.file(path)
        assert d.is_directory and d.user == owner and d.group == "mongodb" and d.mode == 0o750, path


def test_key_file_is_for_mongod_only(host):
    key = host.file("/etc/mongodb/keyfile")
    assert (key.user, key.group, key.mode) == ("mongodb", "mongodb", 0o400)
    assert key.content_string == KEY + "\n"
    # Another user cannot read it (mongod refuses a key file others can read).
    assert host.run("runuser -u nobody -- cat /etc/mongodb/keyfile").rc != 0


def test_mongod_conf_as_mongod_reads_it(host):
    conf_file = host.file("/etc/mongod.conf")
    assert conf_file.mode == 0o644
    text = conf_file.content_string
    assert text.startswith("#")
    assert mongodb_config_errors(text) == []
    conf = yaml.safe_load(text)
    address = host.interface("eth0").addresses[0]
    assert conf["net"] == {"port": 27017, "bindIp": f"127.0.0.1,{address}"}
    assert conf["storage"] == {"dbPath": "/srv/mongodb", "wiredTiger": {"engineConfig": {"cacheSizeGB": 0.5}}}
    assert conf["security"] == {"authorization": "enabled", "keyFile": "/etc/mongodb/keyfile"}
    assert conf["replication"] == {"replSetName": "rs0"}
    for secret in SECRETS:
        assert secret not in text


def test_systemd_applies_the_limits_drop_in(host):
    """systemd ignores drop-ins of a unit that does not exist: a probe unit gets the same file."""
    dropin = "/etc/systemd/system/mongod.service.d/limits.conf"
    assert host.file(dropin).content_string.startswith("#")
    probe = "webstack-mongod-limits-probe"
    host.check_output(
        f"mkdir -p /etc/systemd/system/{probe}.service.d && cp {dropin} /etc/systemd/system/{probe}.service.d/ && "
        f"printf '[Service]\\nExecStart=/bin/sleep 600\\n' > /etc/systemd/system/{probe}.service && "
        f"systemctl daemon-reload && systemctl start {probe}"
    )
    try:
        shown = host.check_output(f"systemctl show {probe} -p LimitNOFILE -p LimitNPROC -p TasksMax -p MainPID")
        assert "LimitNOFILE=16000" in shown and "LimitNPROC=64000" in shown and "TasksMax=infinity" in shown
        pid = shown.split("MainPID=")[1].split()[0]
        limits = host.check_output(f"cat /proc/{pid}/limits")
        assert [line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files")] == [
            ["16000", "16000"]
        ]
    finally:
        host.run(
            f"systemctl stop {probe}; rm -rf /etc/systemd/system/{probe}.service /etc/systemd/system/{probe}.service.d;"
            " systemctl daemon-reload"
        )


def test_nothing_of_the_server_ran(host):
    """What this scenario does not cover, stated as a fact of the host."""
    assert not host.exists("mongod")
    assert not host.service("mongod").is_running
    assert not host.file("/opt/webstack/mongodb-venv").exists


# ---------------------------------------------------------------- the role run again


def test_check_mode_shows_the_plan_and_never_the_key(host):
    """A check with --diff and a new key: only the key file would change, and no secret is printed."""
    before = fingerprint(host)
    rc, report, output = converge("--check", "--diff", extra={"mongodb_keyfile_content": OTHER_KEY})
    assert rc == 0, output[-3000:]
    results = task_results(report)
    changed = sorted(name for name, result in results.items() if result.get("changed"))
    assert changed == ["webstack.deploy.mongodb : Write the replica set key file"], changed
    plan = results["webstack.deploy.mongodb : Report the replica set, users and indexes this host manages"]["msg"]
    assert plan["replica_set"] == "rs0"
    assert plan["members"] == [f"{HOST}:27017"]
    assert plan["initiator"] == HOST and plan["manages_users_and_indexes"] is True
    assert plan["users"] == [
        {
            "name": "eec_nif_api",
            "database": "eec_nif",
            "state": "present",
            "roles": [{"role": "readWrite", "db": "eec_nif"}],
        },
        {"name": "reports", "database": "admin", "state": "present", "roles": [{"role": "read", "db": "eec_nif"}]},
        {"name": "retired", "database": "eec_nif", "state": "absent"},
    ]
    # The name holds the keys in their declared order (JSON output sorts a mapping's keys).
    assert [(i["collection"], i["options"]["name"], sorted(i["keys"])) for i in plan["indexes"]] == [
        ("studentusers", "schoolId_1_grade_1_section_1", ["grade", "schoolId", "section"]),
        ("feeinvoices", "schoolId_1_studentId_1_status_1", ["schoolId", "status", "studentId"]),
        ("sessions", "createdAt_1", ["createdAt"]),
    ]
    assert plan["indexes"][2]["options"]["expireAfterSeconds"] == 86400
    for secret in SECRETS:
        assert secret not in output, "a secret reached the output"
    assert fingerprint(host) == before


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"mongodb_port": "mongo"}, ["mongodb_port", "int"]),
        (
            {"mongodb_users": [{"name": "eec_nif_api", "password": "short", "roles": ["readWrite"]}]},
            ["mongodb_users entry 'eec_nif_api': password: expected a string of at least 16 characters"],
        ),
        (
            {"mongodb_repository_key": "not a key"},
            ["mongodb_repository_key: expected an ASCII-armored OpenPGP public key"],
        ),
        (
            {"mongodb_port": 70000},
            ["mongod.conf net.port (mongodb_port): expected a port number 1-65535, found 70000"],
        ),
    ],
    ids=["port-type", "user-password", "repository-key", "port-range"],
)
def test_bad_input_stops_the_role_naming_the_variable(host, extra, expected):
    before = fingerprint(host)
    rc, report, output = converge(extra=extra)
    assert rc != 0
    for fragment in expected:
        assert fragment in output, output[-3000:]
    assert not any(result.get("changed") for result in task_results(report).values())
    assert fingerprint(host) == before


def test_without_the_skip_the_role_stops_on_the_missing_mongod(host):
    """The golden-image switch on a host whose image lacks mongodb-org: a clear stop, nothing started."""
    before = fingerprint(host)
    rc, report, _ = converge(skip_server=False)
    assert rc != 0
    results = task_results(report)
    failed = [name for name, result in results.items() if result.get("failed")]
    assert failed == ["webstack.deploy.mongodb : Check that the image carries mongod"], failed
    message = results[failed[0]]["msg"]
    assert "mongodb_packages_install is false" in message
    assert "/usr/bin/mongod is missing" in message
    assert "Keep mongod enabled and running" not in " ".join(results)
    assert fingerprint(host) == before
