"""The Molecule logs scenario writes with an emulator of the sample API's logger.

Its lines must look like the real logger's (apps/sample/api/src/logger.js):
same keys, same key order, same timestamp format, errors in error.log too,
and a rename followed by SIGHUP loses and repeats no line.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / "molecule" / "logs" / "files" / "winston_emulator.py"
API = ROOT / "apps" / "sample" / "api"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _node_modules() -> Path | None:
    candidate = Path(os.environ.get("SAMPLE_API_NODE_MODULES", API / "node_modules"))
    return candidate if (candidate / "winston").is_dir() else None


def _emulate(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    user = pwd.getpwuid(os.getuid()).pw_name
    return subprocess.Popen(
        [sys.executable, str(EMULATOR), "--dir", str(tmp_path), "--user", user, *args],
        env={**os.environ, "WINSTON_EMULATOR_PIDFILE": str(tmp_path / "pid")},
    )


def test_emulator_lines_match_the_sample_api_logger(tmp_path: Path) -> None:
    modules = _node_modules()
    if shutil.which("node") is None or modules is None:
        pytest.skip("node and the sample API's node_modules (tools/app-images.sh runs npm ci) are needed")
    real_dir = tmp_path / "real"
    script = (
        f"const {{ createLogger, flushLogger }} = require({json.dumps(str(API / 'src' / 'logger.js'))});"
        f"const l = createLogger({{ logDir: {json.dumps(str(real_dir))}, version: 'v1', color: 'blue',"
        " stdout: false });"
        "l.info('request', { method: 'GET', path: '/api/items', run: 'r', seq: 0, status: 200 });"
        "l.error('request failed', { method: 'GET', path: '/api/items', run: 'r', seq: 9, status: 500 });"
        "flushLogger(l).then(() => process.exit(0));"
    )
    subprocess.run(["node", "-e", script], check=True, timeout=60, env={**os.environ, "NODE_PATH": str(modules)})
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    assert _emulate(fake_dir, "--run", "r", "--count", "10", "--rate", "0").wait(timeout=30) == 0

    for name, count in (("combined", 2), ("error", 1)):
        real = [json.loads(x) for x in (real_dir / f"{name}.log").read_text().splitlines()]
        fake = [json.loads(x) for x in (fake_dir / f"{name}.log").read_text().splitlines()]
        assert len(real) == count
        assert len(fake) == (10 if name == "combined" else 1)
        assert list(fake[-1]) == list(real[-1]), "same keys in the same (sorted) order"
        for a, b in zip(real[-1].items(), fake[-1].items(), strict=True):
            if a[0] not in ("pid", "timestamp"):
                assert a == b
        assert TIMESTAMP.match(real[-1]["timestamp"]) and TIMESTAMP.match(fake[-1]["timestamp"])


def test_emulator_reopens_on_sighup_without_losing_a_line(tmp_path: Path) -> None:
    proc = _emulate(tmp_path, "--run", "hup", "--count", "3000", "--rate", "1000")
    time.sleep(1)
    (tmp_path / "combined.log").rename(tmp_path / "combined.log.1")
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=30) == 0
    seqs = []
    for name in ("combined.log.1", "combined.log"):
        seqs += [json.loads(x)["seq"] for x in (tmp_path / name).read_text().splitlines()]
    assert (tmp_path / "combined.log").stat().st_size > 0
    assert sorted(seqs) == list(range(3000))
