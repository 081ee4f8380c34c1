#!/usr/bin/python
# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: http_gate
short_description: Wait until a URL answers as expected (a health gate, a smoke test)
version_added: 0.2.0
description:
  - Sends one HTTP(S) request every O(interval) seconds, from the managed host, until the answer has the
    expected status, contains the expected text and carries the expected JSON fields, or O(timeout) seconds
    have passed.
  - Fails with the URL, what was wrong with the last answer and the start of its body.
options:
  url:
    description: URL to request, for example V(http://127.0.0.1:5001/health).
    type: str
    required: true
  host:
    description: Host header and TLS server name (empty - the URL's host).
    type: str
    default: ""
  method:
    description: HTTP method.
    type: str
    default: GET
    choices: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS]
  body:
    description: JSON request body (text, or data sent as JSON).
    type: raw
  status:
    description: Expected status.
    type: int
    default: 200
  contains:
    description: Text the body must contain.
    type: str
    default: ""
  expect:
    description: Fields of the JSON answer and their expected values (compared as text).
    type: dict
    default: {}
  timeout:
    description: Seconds to keep trying (V(0) - one request).
    type: float
    default: 60
  interval:
    description: Seconds between requests.
    type: float
    default: 1
  request_timeout:
    description: Seconds one request may take.
    type: float
    default: 5
  validate_certs:
    description: Check the TLS certificate.
    type: bool
    default: true
  cafile:
    description: CA file on the host to check the certificate with.
    type: path
    default: ""
attributes:
  check_mode:
    support: full
    details: Read-only; it runs in check mode too.
  diff_mode:
    support: none
  idempotent:
    support: full
extends_documentation_fragment:
  - webstack.deploy.attributes
author:
  - webstack.deploy maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Health gate of the new colour
  webstack.deploy.http_gate:
    url: http://127.0.0.1:5002/health
    expect: {version: v2, color: green}
    timeout: 60
"""

RETURN = r"""
ok:
  description: Whether the last answer was the expected one.
  type: bool
  returned: always
status:
  description: Status of the last answer (null - no answer).
  type: int
  returned: always
problem:
  description: What was wrong with the last answer (null when ok).
  type: str
  returned: always
body:
  description: Start of the last answer's body.
  type: str
  returned: always
attempts:
  description: Requests sent.
  type: int
  returned: always
elapsed:
  description: Seconds spent.
  type: float
  returned: always
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.deploy.plugins.module_utils.http_check import gate, request


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "host": {"type": "str", "default": ""},
            "method": {
                "type": "str",
                "default": "GET",
                "choices": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            },
            "body": {"type": "raw"},
            "status": {"type": "int", "default": 200},
            "contains": {"type": "str", "default": ""},
            "expect": {"type": "dict", "default": {}},
            "timeout": {"type": "float", "default": 60.0},
            "interval": {"type": "float", "default": 1.0},
            "request_timeout": {"type": "float", "default": 5.0},
            "validate_certs": {"type": "bool", "default": True},
            "cafile": {"type": "path", "default": ""},
        },
        supports_check_mode=True,
    )
    p = module.params
    body = p["body"]
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    result = gate(
        lambda: request(p["url"], p["host"], p["method"], body, p["request_timeout"], p["validate_certs"], p["cafile"]),
        status=p["status"],
        expect=p["expect"],
        contains=p["contains"],
        timeout=p["timeout"],
        interval=p["interval"],
    )
    result["url"] = p["url"]
    if not result["ok"]:
        module.fail_json(
            msg=f"{p['method']} {p['url']}: {result['problem']} after {result['attempts']} tries in "
            f"{result['elapsed']} s; last answer: {result['body'].strip() or 'none'}",
            changed=False,
            **result,
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
