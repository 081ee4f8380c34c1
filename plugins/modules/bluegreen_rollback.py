#!/usr/bin/python
# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bluegreen_rollback
short_description: Send apps' traffic back to their previous colour at once, then record it
version_added: 0.2.0
description:
  - For each app - reads its release record, asks its previous colour on its own port whether it still runs
    the previous version (one health request), and if so points nginx back at it
    (C(<live_dir>/<app>), read by nginx on the next request; no reload) and records the rollback.
  - Everything a rollback needs happens in this one task, so traffic is back as soon as Ansible reaches the host.
  - An app whose previous colour does not answer is left as it is and reported with C(needs_start); the
    webstack.deploy.bluegreen role then starts it from the recorded image, gates it and switches.
  - With O(confirm), a confirmation the operator typed is checked against a JSON file on the host first (for
    playbooks/rollback.yml, restore_confirm against the backup label of the release record); when it does not
    match, the task fails before anything changes, and the file is returned either way as RV(confirmed).
options:
  apps:
    description: Apps to roll back - C(name), C(colour_ports) (C(blue), C(green)) and C(health_path).
    type: list
    elements: dict
    required: true
  health_version_field:
    description: JSON field of the health answer that names the version ('' - not checked).
    type: str
    default: version
  health_colour_field:
    description: JSON field of the health answer that names the colour ('' - not checked).
    type: str
    default: color
  keep_previous_seconds:
    description: How long the colour rolled back from keeps running (recorded as C(previous_stops_at)).
    type: int
    default: 900
  history_size:
    description: Entries kept in each record's history.
    type: int
    default: 10
  by:
    description: Who rolls back (recorded).
    type: str
    default: ""
  confirm:
    description:
      - A confirmation to check before any change - C(path) of a JSON file on the host, C(field) in it (dotted,
        for example C(backup.label)), the C(value) it must equal, the C(name) the operator gave it (named in the
        error) and C(what) the field is (for the error).
      - Empty - nothing to check.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
    details: An app whose last event is a rollback is left alone.
extends_documentation_fragment:
  - webstack.deploy.attributes
  - webstack.deploy.bluegreen
author:
  - webstack.deploy maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Traffic back to the previous colour
  webstack.deploy.bluegreen_rollback:
    apps:
      - {name: sample-api, colour_ports: {blue: 5001, green: 5002}, health_path: /health}
"""

RETURN = r"""
apps:
  description: Per app - C(result) (rolled_back, already, no_previous, needs_start), C(colour) and C(version)
    live after the task, C(from_colour), C(from_version), C(problem) of the previous colour's probe,
    C(switched_after) (seconds from the module's start).
  type: dict
  returned: always
confirmed:
  description: The JSON file of O(confirm), once confirmed (empty without O(confirm)).
  type: dict
  returned: always
"""

import json
import os
import time
from datetime import UTC, datetime, timedelta

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.deploy.plugins.module_utils.bluegreen import (
    HOST_PATHS_SPEC,
    judge_answer,
    next_record,
    write_atomically,
    write_live,
)
from ansible_collections.webstack.deploy.plugins.module_utils.http_check import request


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_confirm(module: AnsibleModule, confirm: dict) -> dict:
    """The file of ``confirm``, after checking that its field equals the value; fails before any change."""
    if not confirm:
        return {}
    missing = [k for k in ("path", "field", "value", "name") if not str(confirm.get(k) or "")]
    if missing:
        module.fail_json(msg=f"confirm: expected path, field, value and name, found no {', '.join(missing)}")
    path, field, name = confirm["path"], confirm["field"], confirm["name"]
    what = confirm.get("what") or field
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        document, problem = {}, f"{path} is missing"
    except ValueError as err:
        document, problem = {}, f"{path} is not JSON ({err})"
    else:
        problem = ""
    found: object = document
    for key in field.split("."):
        found = found.get(key) if isinstance(found, dict) else None
    if not problem and (found is None or found == ""):
        problem = f"{path} names no {what} ({field})"
    if problem:
        module.fail_json(msg=f"{name}: nothing to confirm against on this host: {problem}. Nothing was changed.")
    if str(found) != str(confirm["value"]):
        module.fail_json(
            msg=f"{name} must equal the {what} ({field} in {path}): expected {found}, found {confirm['value']}. "
            "Nothing was changed."
        )
    return document if isinstance(document, dict) else {}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "apps": {"type": "list", "elements": "dict", "required": True},
            "health_version_field": {"type": "str", "default": "version"},
            "health_colour_field": {"type": "str", "default": "color"},
            **HOST_PATHS_SPEC,
            "keep_previous_seconds": {"type": "int", "default": 900},
            "history_size": {"type": "int", "default": 10},
            "by": {"type": "str", "default": ""},
            "confirm": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    started = time.monotonic()
    out, changed = {}, False
    # Before anything changes: the operator's confirmation, when one is asked for.
    confirmed = check_confirm(module, p["confirm"])
    for app in p["apps"]:
        name = app["name"]
        path = os.path.join(p["state_dir"], f"{name}.json")
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except FileNotFoundError:
            record = None
        except ValueError as err:
            module.fail_json(msg=f"{path} is not JSON ({err})")
        if not record or not record.get("previous"):
            out[name] = {
                "result": "no_previous",
                "colour": (record or {}).get("colour", ""),
                "version": (record or {}).get("version", ""),
            }
            continue
        if record.get("event") == "rollback":
            out[name] = {
                "result": "already",
                "colour": record["colour"],
                "version": record["version"],
                "at": record["at"],
            }
            continue
        back = record["previous"]
        port = int(app["colour_ports"][back["colour"]])
        expect = {}
        if p["health_version_field"]:
            expect[p["health_version_field"]] = back["version"]
        if p["health_colour_field"]:
            expect[p["health_colour_field"]] = back["colour"]
        answer = request(f"http://127.0.0.1:{port}{app.get('health_path') or '/health'}", timeout=2)
        problem = judge_answer(answer["status"], answer["body"], 200, expect, error=answer["error"])
        entry = {
            "from_colour": record["colour"],
            "from_version": record["version"],
            "colour": back["colour"],
            "version": back["version"],
            "image": back["image"],
            "port": port,
        }
        if problem:
            out[name] = {**entry, "result": "needs_start", "problem": problem}
            continue
        changed = True
        if not module.check_mode:
            write_live(p["live_dir"], name, back["colour"])
        entry["switched_after"] = round(time.monotonic() - started, 3)
        now = datetime.now(UTC)
        keep = p["keep_previous_seconds"]
        new = next_record(
            record,
            "rollback",
            name,
            back,
            {
                "colour": record["colour"],
                "version": record["version"],
                "image": record["image"],
                "port": record["port"],
            },
            stamp(now),
            stamp(now + timedelta(seconds=keep)) if keep > 0 else None,
            p["by"],
            p["history_size"],
        )
        if not module.check_mode:
            write_atomically(path, json.dumps(new, indent=2) + "\n")
        out[name] = {**entry, "result": "rolled_back", "at": new["at"]}
    module.exit_json(changed=changed, apps=out, confirmed=confirmed, elapsed=round(time.monotonic() - started, 3))


if __name__ == "__main__":
    main()
