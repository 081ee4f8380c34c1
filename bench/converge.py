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
import resource
import shutil
import signal
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
    # The benchmark names its hosts itself (--prefix); a local fleet's prefix must not apply.
    for name in ("WEBSTACK_FLEET_PREFIX", "WEBSTACK_FLEET_PORT_OFFSET"):
        env.pop(name, None)
    env.update(ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="1", PY_COLORS="0")
    return env


def mitogen_environment(env: dict[str, str]) -> dict[str, str]:
    """Mitogen for Ansible's linear strategy (docs/speed.md): needs `pip install mitogen`."""
    try:
        import ansible_mitogen  # only with --mitogen
    except ImportError as exc:
        raise SystemExit(f"converge.py: --mitogen needs the mitogen package in this Python ({exc})") from exc
    plugins = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    return {
        **env,
        "ANSIBLE_STRATEGY_PLUGINS": str(plugins),
        "ANSIBLE_STRATEGY": "mitogen_linear",
    }


def write_inventory(directory: Path, prefix: str, size: int, image: str) -> Path:
    """An inventory of `size` data hosts in the groups local_fleet.yml and the play use."""
    # ansible_host literally: Mitogen does not template it (local.yml has "{{ inventory_hostname }}").
    hosts = "".join(f"        {prefix}h{i}:\n          ansible_host: {prefix}h{i}\n" for i in range(1, size + 1))
    (directory / "hosts.yml").write_text(
        "---\nlocal:\n  children:\n    bench_data:\n"
        f"      vars:\n        local_fleet_image: {image}\n      hosts:\n{hosts}",
        encoding="utf-8",
    )
    (directory / "group_vars").mkdir()
    (directory / "group_vars" / "local.yml").symlink_to(LOCAL_VARS)
    return directory


def controller_cpu() -> float:
    """CPU seconds of every finished child process (ansible-playbook and the docker CLIs it ran)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def hosts_cpu(names: list[str]) -> float:
    """CPU seconds the host containers have used so far (cgroup v1 cpuacct, else cgroup v2 cpu.stat)."""
    ids = subprocess.run(
        ["docker", "inspect", "--format", "{{.Id}}", *names], capture_output=True, text=True, check=True
    ).stdout.split()
    total = 0.0
    for cid in ids:
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
        if v1.exists():
            total += int(v1.read_text(encoding="utf-8")) / 1e9
        elif v2.exists():
            stat = dict(line.split() for line in v2.read_text(encoding="utf-8").splitlines())
            total += int(stat["usage_usec"]) / 1e6
    return total


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
        names = [f"{args.prefix}h{i}" for i in range(1, size + 1)]
        converge_env = mitogen_environment(env) if args.mitogen else env
        # Mitogen takes over connections by their short name only: `docker`, not community.docker.docker.
        extra = [*args.extra, "-e", "ansible_connection=docker"] if args.mitogen else args.extra
        cpu = {}
        try:
            playbook(inventory, FLEET, logs / f"fleet-up-{size}.log", fleet_vars, env)
            for run in ("first", "second"):
                before = controller_cpu(), hosts_cpu(names)
                took, recap = playbook(inventory, PLAY, logs / f"{run}-{size}.log", extra, converge_env)
                after = controller_cpu(), hosts_cpu(names)
                cpu[run] = (took, recap, after[0] - before[0], after[1] - before[1])
        finally:
            if not args.keep:
                playbook(
                    inventory,
                    FLEET,
                    logs / f"fleet-down-{size}.log",
                    [*fleet_vars, "-e", "local_fleet_state=absent"],
                    env,
                )
    (first, recap1, ctl1, hst1), (second, recap2, ctl2, hst2) = cpu["first"], cpu["second"]
    return {
        "hosts": size,
        "tasks_per_host": max((h["ok"] for h in recap1.values()), default=0),
        "first_s": round(first, 1),
        "second_s": round(second, 1),
        "second_changed": sum(h["changed"] for h in recap2.values()),
        "second_to_first": round(second / first, 3),
        # CPU seconds: the controller's (ansible-playbook, docker CLI) and the hosts' own.
        "first_cpu_controller_s": round(ctl1, 1),
        "first_cpu_hosts_s": round(hst1, 1),
        "second_cpu_controller_s": round(ctl2, 1),
        "second_cpu_hosts_s": round(hst2, 1),
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
    parser.add_argument("--mitogen", action="store_true", help="converge with Mitogen for Ansible (docs/speed.md)")
    parser.add_argument("extra", nargs="*", help="after --: extra ansible-playbook arguments")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if shutil.which("docker") is None:
        raise SystemExit("converge.py: docker is not on PATH")

    # A stop (SIGTERM, or Ctrl-C in a background job, where SIGINT is ignored)
    # still removes the containers: the fleet-down runs in a finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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

    print(
        f"\n{'hosts':>5} {'tasks':>5} {'first s':>8} {'second s':>9} {'2nd/1st':>8} {'changed':>7}"
        f"  {'CPU s 1st/2nd (controller+hosts)':>32}  load before / after"
    )
    for r in rows:
        cpu = (
            f"{r['first_cpu_controller_s']}+{r['first_cpu_hosts_s']} / "
            f"{r['second_cpu_controller_s']}+{r['second_cpu_hosts_s']}"
        )
        print(
            f"{r['hosts']:>5} {r['tasks_per_host']:>5} {r['first_s']:>8} {r['second_s']:>9}"
            f" {r['second_to_first']:>7.0%} {r['second_changed']:>7}  {cpu:>32}  {r['load_before']} / {r['load_after']}"
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
