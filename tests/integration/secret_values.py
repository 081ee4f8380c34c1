"""The secret values of an inventory, and where they show up in output.

Shared by the tests that prove no secret is printed (tests/integration/test_no_secrets_in_output.py
at -vvv on a host container, tests/e2e on the local fleet). A secret is the value of a variable (or
key, at any depth) whose name says it is secret: password, secret, token, key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_BIN = Path(sys.executable).parent

# Variable (or key) names that hold secrets, and names that look like it but do not.
SECRET_NAME = re.compile(r"password|passwd|secret|token|key", re.IGNORECASE)
NOT_SECRET_NAME = re.compile(r"ssh_keys|public|_pub$|keyring|key_(path|file)$", re.IGNORECASE)
# Values too short or too generic to be a secret of their own.
MIN_SECRET_LENGTH = 8


def _walk_secrets(value, secret: bool, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            name = str(key)
            is_secret = secret or (bool(SECRET_NAME.search(name)) and not NOT_SECRET_NAME.search(name))
            _walk_secrets(inner, is_secret, found)
    elif isinstance(value, list):
        for inner in value:
            _walk_secrets(inner, secret, found)
    elif secret and isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH and "{{" not in value:
        found.add(value)


def secrets_of(inventory_vars: dict) -> set[str]:
    """Every string value held under a secret-looking name, at any depth of ``inventory_vars``."""
    found: set[str] = set()
    _walk_secrets(inventory_vars, False, found)
    return found


def inventory_secrets(inventory: str) -> set[str]:
    """The secret values of every host and group of ``inventory`` (as ``ansible-inventory`` sees them)."""
    out = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-inventory"), "-i", inventory, "--list"],
        cwd=REPO_ROOT,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg")),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return secrets_of(json.loads(out.stdout))


def count_secrets(output: str, secrets: set[str]) -> dict[str, int]:
    """How often each secret occurs in ``output`` (only those that do)."""
    counts = {secret: output.count(secret) for secret in secrets}
    return {secret: n for secret, n in counts.items() if n}
