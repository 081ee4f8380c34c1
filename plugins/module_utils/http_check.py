# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP(S) request as a health check makes it (standard library only, so it runs on any host), and a
health gate: that request repeated with ``waiting.poll_until`` until the answer is the expected one."""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.webstack.deploy.plugins.module_utils.bluegreen import judge_answer
from ansible_collections.webstack.deploy.plugins.module_utils.waiting import poll_until

BODY_LIMIT = 400


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address, asking for a site by name (SNI) as a browser would."""

    def __init__(self, host: str, port: int, server_name: str, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.server_name = server_name or host

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)  # type: ignore[attr-defined]


def request(
    url: str,
    host: str = "",
    method: str = "GET",
    body: str | None = None,
    timeout: float = 5.0,
    validate_certs: bool = True,
    cafile: str = "",
) -> dict[str, Any]:
    """One request; returns ``status`` (None on a connection error), ``body`` and ``error``."""
    parts = urlsplit(url)
    timeout = max(timeout, 0.1)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=cafile or None)
        if not validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        server_name = (host or parts.hostname or "").split(":")[0]
        conn: http.client.HTTPConnection = _NamedHTTPSConnection(
            parts.hostname or "", parts.port or 443, server_name, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    path = (parts.path or "/") + (("?" + parts.query) if parts.query else "")
    headers = {"Host": host or parts.netloc, "Connection": "close", "User-Agent": "webstack.deploy"}
    data = None
    if body is not None:
        data = body.encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return {"status": response.status, "body": response.read().decode(errors="replace"), "error": None}
    except (OSError, http.client.HTTPException) as err:
        return {"status": None, "body": "", "error": f"{type(err).__name__}: {err}" if str(err) else type(err).__name__}
    finally:
        conn.close()


def gate(
    fetch: Callable[[], Mapping[str, Any]],
    status: int = 200,
    expect: Mapping[str, Any] | None = None,
    contains: str = "",
    timeout: float = 60.0,
    interval: float = 1.0,
    sleep: Callable[[float], Any] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Call ``fetch`` (one request) until its answer is the expected one or ``timeout`` passed.

    Returns ``ok``, the last ``status``, ``problem`` (None when ok), ``body`` (cut), ``attempts``, ``elapsed``.
    """
    started = clock()
    attempts = 0

    def once() -> tuple[Mapping[str, Any], str | None]:
        nonlocal attempts
        attempts += 1
        answer = fetch()
        return answer, judge_answer(
            answer.get("status"), answer.get("body") or "", status, expect, contains, answer.get("error")
        )

    ok, (answer, problem) = poll_until(once, lambda r: r[1] is None, timeout, interval, sleep=sleep, clock=clock)
    return {
        "ok": ok,
        "status": answer.get("status"),
        "problem": problem,
        "body": (answer.get("body") or "")[:BODY_LIMIT],
        "attempts": attempts,
        "elapsed": round(clock() - started, 2),
    }
