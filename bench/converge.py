#!/usr/bin/env python3
"""Time a data-host converge (base + firewall) at 1 and at 8 hosts.

For each fleet size the benchmark starts that many host containers of its
own with playbooks/local_fleet.yml (same image and container settings as the
local fleet, from an inventory it writes), converges bench/data_host.yml
twice and removes the containers again. Printed per size: the first run's
time, the second run's (changed=0 expected), their ratio, and at the end how
much longer the largest fleet took than a single host.

  bench/converge.py                    # sizes 1 and 8, containers bench-*
  bench/converge.py --sizes 1,3,8 --prefix ci42-bench- --json out.json
  bench/converge.py -- -e ansible_strategy=free   # extra ansible-playbook args

Standard library only. Needs the host image (tools/images.sh) and the
project's venv; Ansible settings come from ansible.cfg as for any run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAY = ROOT / "bench" / "data_host.yml"
FLEET = ROOT / "playbooks" / "local_fleet.yml"
# The variables every local host gets (connection, fake admin user).
LOCAL_VARS = ROOT / "inventories" / "local" / "group_vars" / "local.yml"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    env.update(ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="1", PY_COLORS="0")
    return env


def write_inventory(directory: Path, prefix: str, size: int, image: str) -> Path:
    """An inventory of `size` data hosts in the groups local_fleet.yml and the play use."""
    hosts = "".join(f"        {prefix}h{i}:\n" for i in range(1, size + 1))
    (directory / "hosts.yml").write_text(
        "---\nlocal:\n  children:\n    bench_data:\n"
        f"      vars:\n        local_fleet_image: {image}\n      hosts:\n{hosts}",
        encoding="utf-8",
    )
    (directory / "group_vars").mkdir()
    (directory / "group_vars" / "local.yml").symlink_to(LOCAL_VARS)
    return directory


def playbook(inventory: Path, play: Path, log: Path, extra: list[str], env: dict[str, str]) -> tuple[float, dict]:
    """Run one playbook; return its wall time and the recap per host. Fails loudly."""
    command = ["ansible-playbook", "-i", str(inventory), str(play), *extra]
    start = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    took = time.monotonic() - start
    text = log.read_text(encoding="utf-8")
    recap = {
        m[1]: {"ok": int(m[2]), "changed": int(m[3]), "failed": int(m[4]) + int(m[5])} for m in RECAP.finditer(text)
    }
    if done.returncode != 0:
        sys.stderr.write(text[-4000:])
        raise SystemExit(f"converge.py: {' '.join(command)} failed ({done.returncode}); log {log}")
    return took, recap


def measure(size: int, args: argparse.Namespace, env: dict[str, str], logs: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"{args.prefix}inv-") as tmp:
        inventory = write_inventory(Path(tmp), args.prefix, size, args.image)
        fleet_vars = ["-e", f"local_fleet_network={args.prefix}net"]
        try:
            playbook(inventory, FLEET, logs / f"fleet-up-{size}.log", fleet_vars, env)
            first, recap1 = playbook(inventory, PLAY, logs / f"first-{size}.log", args.extra, env)
            second, recap2 = playbook(inventory, PLAY, logs / f"second-{size}.log", args.extra, env)
        finally:
            if not args.keep:
                playbook(
                    inventory,
                    FLEET,
                    logs / f"fleet-down-{size}.log",
                    [*fleet_vars, "-e", "local_fleet_state=absent"],
                    env,
                )
    changed = sum(h["changed"] for h in recap2.values())
    tasks = max((h["ok"] for h in recap1.values()), default=0)
    return {
        "hosts": size,
        "tasks_per_host": tasks,
        "first_s": round(first, 1),
        "second_s": round(second, 1),
        "second_changed": changed,
        "second_to_first": round(second / first, 3),
    }


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,8", help="fleet sizes, comma-separated (default 1,8)")
    parser.add_argument(
        "--prefix", default="bench-", help="prefix of container, network and host names (default bench-)"
    )
    parser.add_argument("--image", default="webstack/host:bookworm", help="host image (default %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--logs", type=Path, help="keep the playbook logs here (default: a temp dir, removed)")
    parser.add_argument("--keep", action="store_true", help="leave the containers running")
    parser.add_argument("extra", nargs="*", help="after --: extra ansible-playbook arguments")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if shutil.which("docker") is None:
        raise SystemExit("converge.py: docker is not on PATH")

    env = environment()
    logs = args.logs or Path(tempfile.mkdtemp(prefix=f"{args.prefix}logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sizes:
        before = load()
        row = measure(size, args, env, logs)
        row["load_before"], row["load_after"] = before, load()
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    print(f"\n{'hosts':>5} {'tasks':>5} {'first s':>8} {'second s':>9} {'2nd/1st':>8}  changed  load before / after")
    for r in rows:
        print(
            f"{r['hosts']:>5} {r['tasks_per_host']:>5} {r['first_s']:>8} {r['second_s']:>9}"
            f" {r['second_to_first']:>7.0%}  {r['second_changed']:>7}  {r['load_before']} / {r['load_after']}"
        )
    result = {"rows": rows}
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        result["first_ratio"] = round(large["first_s"] / small["first_s"], 2)
        result["second_ratio"] = round(large["second_s"] / small["second_s"], 2)
        print(
            f"\n{large['hosts']}:{small['hosts']} hosts: first run {result['first_ratio']}x,"
            f" second run {result['second_ratio']}x"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not args.logs:
        shutil.rmtree(logs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
