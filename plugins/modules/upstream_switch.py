#!/usr/bin/python
# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: upstream_switch
short_description: Point nginx at the blue or the green colour of an app, without a reload
version_added: 0.2.0
description:
  - The webstack.deploy.nginx role gives each blue/green app two upstreams, C(webstack_<app>_blue) and
    C(webstack_<app>_green), and picks one per request from the file C(<live_dir>/<app>) (njs, C(js_set)).
    This module writes that file, so the next request goes to the new colour; nginx is not reloaded, so no
    keep-alive connection is closed and nothing is in flight on an old worker.
  - Validate - with O(probe_url), the colour must answer as expected on its own port first; otherwise nothing
    changes and the task fails.
  - Switch - one atomic rename of the file.
  - Roll back - with O(verify_url), requests through nginx must come back from the colour within
    O(verify_timeout) seconds; otherwise the previous colour is written back and the task fails.
  - Report - the colour before and after, and how long each step took.
options:
  app:
    description: App name (C([a-z0-9][a-z0-9_-]*)).
    type: str
    required: true
  colour:
    description: Colour that gets the traffic.
    type: str
    required: true
    choices: [blue, green]
  live_dir:
    description: Directory of the live-colour files nginx reads.
    type: path
    default: /etc/nginx/webstack/live
  probe_url:
    description: URL of the colour itself (its health path on its port) that must answer before the switch.
    type: str
    default: ""
  probe_expect:
    description: JSON fields the probe's answer must carry.
    type: dict
    default: {}
  verify_url:
    description: URL through nginx that must answer from the colour after the switch.
    type: str
    default: ""
  verify_host:
    description: Host header and TLS server name of the verification request.
    type: str
    default: ""
  verify_expect:
    description: JSON fields the verification answer must carry (the version and colour).
    type: dict
    default: {}
  verify_timeout:
    description: Seconds nginx has to answer from the colour before the switch is undone.
    type: float
    default: 30
  validate_certs:
    description: Check nginx's TLS certificate on the verification request.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Reports the colour it would switch to; the probe runs, nothing is written.
  diff_mode:
    support: full
  idempotent:
    support: full
    details: A colour that is live already changes nothing (the probe and the verification still run).
extends_documentation_fragment:
  - webstack.deploy.attributes
author:
  - webstack.deploy maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Send sample-api to green, proven through nginx
  webstack.deploy.upstream_switch:
    app: sample-api
    colour: green
    probe_url: http://127.0.0.1:5002/health
    probe_expect: {version: v2}
    verify_url: https://127.0.0.1/health
    verify_host: sample.webstack.test
    verify_expect: {version: v2, color: green}
"""

RETURN = r"""
colour:
  description: Colour nginx sends the app to after the task.
  type: str
  returned: always
previous_colour:
  description: Colour before the task ('' - none recorded).
  type: str
  returned: always
switch_seconds:
  description: Seconds from the module's start to the switch.
  type: float
  returned: always
probe:
  description: Result of the probe (see M(webstack.deploy.http_gate)).
  type: dict
  returned: when O(probe_url) is set
verify:
  description: Result of the verification through nginx.
  type: dict
  returned: when O(verify_url) is set and the switch was made
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.deploy.plugins.module_utils.bluegreen import APP_NAME, read_live, write_live
from ansible_collections.webstack.deploy.plugins.module_utils.http_check import gate, request


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app": {"type": "str", "required": True},
            "colour": {"type": "str", "required": True, "choices": ["blue", "green"]},
            "live_dir": {"type": "path", "default": "/etc/nginx/webstack/live"},
            "probe_url": {"type": "str", "default": ""},
            "probe_expect": {"type": "dict", "default": {}},
            "verify_url": {"type": "str", "default": ""},
            "verify_host": {"type": "str", "default": ""},
            "verify_expect": {"type": "dict", "default": {}},
            "verify_timeout": {"type": "float", "default": 30.0},
            "validate_certs": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    started = time.monotonic()
    app, colour = p["app"], p["colour"]
    if not APP_NAME.match(app):
        module.fail_json(msg=f"app: expected a name matching {APP_NAME.pattern}, found {app!r}")
    if not os.path.isdir(p["live_dir"]):
        module.fail_json(msg=f"live_dir: {p['live_dir']} is not a directory; the nginx role creates it (run site.yml)")
    before = read_live(p["live_dir"], app)
    result = {
        "app": app,
        "colour": colour,
        "previous_colour": before,
        "changed": before != colour,
        "diff": {
            "before": f"{before}\n",
            "after": f"{colour}\n",
            "before_header": f"{p['live_dir']}/{app}",
            "after_header": f"{p['live_dir']}/{app}",
        },
    }

    if p["probe_url"]:
        probe = gate(lambda: request(p["probe_url"], timeout=3), expect=p["probe_expect"], timeout=0)
        result["probe"] = probe
        if not probe["ok"]:
            module.fail_json(
                msg=f"{app}-{colour} is not ready at {p['probe_url']}: {probe['problem']}; "
                f"nginx still sends {app} to {before or 'nothing'}",
                **{**result, "changed": False},
            )
    if module.check_mode:
        module.exit_json(switch_seconds=0.0, **result)
    if before != colour:
        write_live(p["live_dir"], app, colour)
    result["switch_seconds"] = round(time.monotonic() - started, 3)

    if p["verify_url"]:
        verify = gate(
            lambda: request(p["verify_url"], p["verify_host"], validate_certs=p["validate_certs"], timeout=3),
            expect=p["verify_expect"],
            timeout=p["verify_timeout"],
            interval=0.2,
        )
        result["verify"] = verify
        if not verify["ok"]:
            back = ""
            if before and before != colour:
                write_live(p["live_dir"], app, before)
                back = f" nginx sends {app} to {before} again."
            module.fail_json(
                msg=f"through nginx ({p['verify_url']}) {verify['problem']} after {verify['elapsed']} s; "
                f"last answer: {verify['body'].strip() or 'none'}.{back}",
                **{**result, "colour": before or colour, "changed": before != colour and not back},
            )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
