"""The mongodb role's files as mongod and systemd would read them.

No mongod can run on this machine (no package ships one): these tests render
the role's own templates with its own defaults and vars through
ansible-playbook, parse the result and check what mongod would be told.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "mongodb"
KEY = "c2VjcmV0a2V5Zm9ybW9uZ29kYnJlcGxpY2FzZXQ="


def render(tmp_path: Path, template: str, variables: dict) -> str:
    """Render roles/mongodb/templates/<template> with the role's defaults, vars and ``variables``."""
    out = tmp_path / template.removesuffix(".j2")
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        textwrap.dedent(
            f"""\
            - hosts: localhost
              connection: local
              gather_facts: false
              vars_files:
                - {ROLE}/defaults/main.yml
                - {ROLE}/vars/main.yml
              tasks:
                - ansible.builtin.template:
                    src: {ROLE}/templates/{template}
                    dest: {out}
                    mode: "0600"
            """
        )
    )
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"ansible_python_interpreter": sys.executable, **variables}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", str(playbook), "-e", f"@{extra}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out.read_text()


def test_replica_set_member_with_authorization(tmp_path):
    text = render(
        tmp_path,
        "mongod.conf.j2",
        {"mongodb_bind_addresses": ["127.0.0.1", "10.0.1.11"], "mongodb_keyfile_content": KEY},
    )
    assert text.startswith("#"), "the file does not say Ansible manages it"
    conf = yaml.safe_load(text)
    assert conf["net"] == {"port": 27017, "bindIp": "127.0.0.1,10.0.1.11"}
    assert conf["storage"] == {"dbPath": "/var/lib/mongodb"}
    assert conf["security"] == {"authorization": "enabled", "keyFile": "/etc/mongodb/keyfile"}
    assert conf["replication"] == {"replSetName": "rs0"}
    assert conf["systemLog"]["path"] == "/var/log/mongodb/mongod.log"
    assert KEY not in text


def test_standalone_without_authorization_has_no_key_or_set(tmp_path):
    conf = yaml.safe_load(
        render(
            tmp_path,
            "mongod.conf.j2",
            {
                "mongodb_bind_addresses": ["127.0.0.1"],
                "mongodb_replicaset_name": "",
                "mongodb_authorization": False,
                "mongodb_port": 27018,
                "mongodb_storage_path": "/srv/mongo data",
                "mongodb_wiredtiger_cache_gb": 1.5,
            },
        )
    )
    assert "replication" not in conf
    assert conf["security"] == {"authorization": "disabled"}
    assert conf["net"]["port"] == 27018
    assert conf["storage"]["dbPath"] == "/srv/mongo data"
    assert conf["storage"]["wiredTiger"]["engineConfig"]["cacheSizeGB"] == 1.5


def test_default_bind_is_loopback_and_private_addresses_only(tmp_path):
    conf = yaml.safe_load(
        render(
            tmp_path,
            "mongod.conf.j2",
            {
                "mongodb_keyfile_content": KEY,
                "ansible_facts": {"all_ipv4_addresses": ["172.18.0.5", "93.184.216.34", "10.0.1.11"]},
            },
        )
    )
    assert conf["net"]["bindIp"] == "127.0.0.1,172.18.0.5,10.0.1.11"


def test_apt_pin_holds_the_version(tmp_path):
    text = render(tmp_path, "mongodb-org.pref.j2", {"mongodb_version": "7.0.14"})
    assert "Package: mongodb-org mongodb-org-*\nPin: version 7.0.14\nPin-Priority: 1001" in text


@pytest.mark.parametrize(("nofile", "nproc"), [(64000, 64000), (200000, 32000)])
def test_systemd_limits(tmp_path, nofile, nproc):
    text = render(tmp_path, "limits.conf.j2", {"mongodb_limit_nofile": nofile, "mongodb_limit_nproc": nproc})
    unit = configparser.ConfigParser()
    unit.optionxform = str
    unit.read_string(text)
    assert unit["Service"]["LimitNOFILE"] == str(nofile)
    assert unit["Service"]["LimitNPROC"] == str(nproc)
