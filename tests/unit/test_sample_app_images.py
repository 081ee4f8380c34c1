"""tools/app-images.sh refuses bad requests before it touches Docker or npm."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "app-images.sh"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("bogus",), {}, "unknown target 'bogus'"),
        (("api",), {"SAMPLE_API_VERSIONS": "v1 bad!tag"}, "'bad!tag' in SAMPLE_API_VERSIONS is not a valid image tag"),
        (("api",), {"SAMPLE_API_VERSIONS": "  "}, "SAMPLE_API_VERSIONS is empty"),
        (("api",), {"SAMPLE_API_BROKEN": "v9"}, "'v9' in SAMPLE_API_BROKEN is not one of SAMPLE_API_VERSIONS"),
    ],
)
def test_bad_requests_fail_with_a_clear_message(args: tuple[str, ...], env: dict[str, str], message: str) -> None:
    proc = run(*args, **env)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "ERROR" in proc.stderr
    assert "built" not in proc.stdout


def test_script_is_executable_and_valid_bash() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
