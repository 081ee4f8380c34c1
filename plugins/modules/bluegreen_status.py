#!/usr/bin/python
# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bluegreen_status
short_description: What a Docker host runs of its blue/green apps - release records, colours, nginx's live colour
version_added: 0.2.0
description:
  - One look at the host for every app - its release record C(<state_dir>/<app>.json), its containers
    C(<app>-blue) and C(<app>-green) (running, image, version and settings digest from their labels) and the
    colour nginx sends it to (C(<live_dir>/<app>)).
  - Read-only. On a host without Docker yet (check mode on a fresh host) every container is reported absent.
options:
  apps:
    description: App names.
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
extends_documentation_fragment:
  - webstack.deploy.attributes
  - webstack.deploy.bluegreen
author:
  - webstack.deploy maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Look at the host
  webstack.deploy.bluegreen_status:
    apps: [sample-api, orders]
  register: seen
"""

RETURN = r"""
apps:
  description: Per app - C(record) (null without a release), C(containers) (per colour - exists, running, image,
    version, digest) and C(live) (the colour nginx sends the app to, '' when none).
  type: dict
  returned: always
"""

import json
import os
import shutil
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.deploy.plugins.module_utils.bluegreen import COLOURS, HOST_PATHS_SPEC, read_live

ABSENT = {"exists": False, "running": False, "image": None, "version": None, "digest": None}


def containers(module: AnsibleModule, names: list[str]) -> dict:
    if not shutil.which("docker"):
        return {}
    proc = subprocess.run(["docker", "container", "inspect", *names], capture_output=True, text=True)
    try:
        found = json.loads(proc.stdout or "[]")
    except ValueError:
        module.fail_json(msg=f"docker container inspect failed: {proc.stderr.strip()}")
    if not found and proc.returncode != 0 and "No such" not in proc.stderr:
        module.fail_json(msg=f"docker container inspect failed: {proc.stderr.strip()}")
    out = {}
    for c in found:
        labels = c["Config"].get("Labels") or {}
        out[c["Name"].lstrip("/")] = {
            "exists": True,
            "running": bool(c["State"]["Running"] and not c["State"].get("Restarting")),
            "image": c["Config"]["Image"],
            "version": labels.get("webstack.version"),
            "digest": labels.get("webstack.digest"),
        }
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "apps": {"type": "list", "elements": "str", "required": True},
            **HOST_PATHS_SPEC,
        },
        supports_check_mode=True,
    )
    p = module.params
    names = [f"{app}-{colour}" for app in p["apps"] for colour in COLOURS]
    seen = containers(module, names) if names else {}
    apps = {}
    for app in p["apps"]:
        path = os.path.join(p["state_dir"], f"{app}.json")
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except FileNotFoundError:
            record = None
        except ValueError as err:
            module.fail_json(msg=f"{path} is not JSON ({err}): fix or remove it")
        apps[app] = {
            "record": record,
            "containers": {colour: seen.get(f"{app}-{colour}", ABSENT) for colour in COLOURS},
            "live": read_live(p["live_dir"], app),
        }
    module.exit_json(changed=False, apps=apps)


if __name__ == "__main__":
    main()
