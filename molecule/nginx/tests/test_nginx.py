"""What a client of a host converged by webstack.deploy.nginx sees.

Requests go from the controller to the container's address on the scenario's
bridge network, with the SNI and Host header of the site, the way a browser
or a load balancer would reach the host. Host-side checks (files, service,
sockets) go through testinfra.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")

SCENARIO_DIR = Path(__file__).resolve().parents[1]
PROJECT_DIR = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", SCENARIO_DIR.parents[1]))
WEB = "www.webstack.test"
WEB_ALIAS = "webstack.test"
ADMIN = "admin.webstack.test"
PUBLIC = "public.webstack.test"
ASSET = "/assets/app.3f9c2b71.js"
CA_PATH = "/etc/webstack/ca/ca.crt"
# converge.yml keeps the platform CA here, on the controller.
CONTROLLER_CA_DIR = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ca")
MOZILLA_HSTS = "max-age=63072000; includeSubDomains"
DEFAULT_CSP_START = "default-src 'self'; script-src 'self'"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> dict:
        return json.loads(self.body)


class _SniConnection(http.client.HTTPSConnection):
    """HTTPS to an IP address with the SNI and Host of a site name."""

    def __init__(self, ip: str, server_name: str, context: ssl.SSLContext) -> None:
        super().__init__(server_name, 443, context=context, timeout=15)
        self._ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def https(
    ip: str,
    ca_context: ssl.SSLContext,
    path: str,
    server_name: str = WEB,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> Response:
    conn = _SniConnection(ip, server_name, ca_context)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def http_plain(ip: str, path: str, server_name: str = WEB) -> Response:
    conn = http.client.HTTPConnection(ip, 80, timeout=15)
    try:
        conn.request("GET", path, headers={"Host": server_name})
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def run_converge(hostname: str, extra_vars: dict, check: bool = False) -> subprocess.CompletedProcess:
    """Run the scenario's converge playbook against one host, as an operator would."""
    playbook = shutil.which("ansible-playbook") or str(Path(sys.executable).with_name("ansible-playbook"))
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(PROJECT_DIR / ".collections"))
    env["ANSIBLE_FORCE_COLOR"] = "false"
    cmd = [
        playbook,
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        "--limit",
        hostname,
        "-e",
        json.dumps(extra_vars),
        str(SCENARIO_DIR / "converge.yml"),
    ]
    if check:
        cmd.insert(1, "--check")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200, check=False)


@pytest.fixture(scope="module")
def ip(host) -> str:
    name = host.backend.get_hostname()
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out, f"no address for container {name}"
    return out[0]


@pytest.fixture(scope="module")
def ca_file(host, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "platform-ca.crt"
    path.write_text(host.file(CA_PATH).content_string)
    return path


@pytest.fixture(scope="module")
def ca_context(ca_file) -> ssl.SSLContext:
    # Trusts the platform CA only and checks the host name: a handshake that
    # succeeds proves the site certificate is signed by it and covers the name.
    return ssl.create_default_context(cafile=str(ca_file))


# --- service and files ------------------------------------------------------


def test_nginx_is_running_and_enabled(host):
    svc = host.service("nginx")
    assert svc.is_running
    assert svc.is_enabled
    assert host.socket("tcp://0.0.0.0:443").is_listening
    assert host.socket("tcp://0.0.0.0:80").is_listening


def test_key_material_is_private(host):
    for path in ("/etc/webstack/tls/web.key", "/etc/webstack/tls/admin.key"):
        f = host.file(path)
        assert f.exists, path
        assert f.user == "root"
        assert f.mode == 0o600, f"{path} has mode {oct(f.mode)}"
    assert host.file("/etc/webstack/ca").mode == 0o700


def test_no_host_holds_the_ca_key(host):
    """The CA signs on the controller: no private key on the host matches the CA certificate."""
    ca_public = host.check_output(f"openssl x509 -in {CA_PATH} -noout -pubkey")
    assert not host.file("/etc/webstack/ca/ca.key").exists
    keys = host.check_output(
        "grep -rlE -- '-----BEGIN (EC |RSA |ENCRYPTED )?PRIVATE KEY-----' /etc /root /srv /var/lib || true"
    )
    assert keys.split(), "no private key found at all: the search looks in the wrong places"
    for path in keys.split():
        public = host.run(f"openssl pkey -in {path} -pubout").stdout
        assert public != ca_public, f"{path} on {host.backend.get_hostname()} is the CA's private key"
    # The controller holds it, private to its owner.
    controller_key = Path(CONTROLLER_CA_DIR) / "ca.key"
    assert controller_key.exists()
    assert controller_key.stat().st_mode & 0o077 == 0


def test_upstream_files_follow_the_bluegreen_interface(host):
    # Hyphens in app names become underscores in the upstream name only.
    expected = {
        "api": "upstream webstack_api { server 127.0.0.1:5000; keepalive 16; }",
        "live-ws": "upstream webstack_live_ws { server 127.0.0.1:3001; keepalive 16; }",
        "admin": "upstream webstack_admin { server 127.0.0.1:3002; keepalive 16; }",
    }
    for app, line in expected.items():
        f = host.file(f"/etc/nginx/webstack/upstreams/{app}.conf")
        assert f.exists, app
        assert line in f.content_string.splitlines()
    assert "include /etc/nginx/webstack/upstreams/*.conf;" in host.file("/etc/nginx/nginx.conf").content_string


def test_validator_refuses_a_broken_candidate(host):
    site = "/etc/nginx/webstack/sites/web.conf"
    before = host.file(site).sha256sum
    host.run_expect([0], "printf 'server { listen 443 ssl; bogus_directive on; }\\n' > /tmp/nginx-broken.conf")
    bad = host.run(f"/usr/local/sbin/webstack-nginx-validate /tmp/nginx-broken.conf {site}")
    assert bad.rc != 0
    assert "bogus_directive" in bad.stderr
    good = host.run(f"/usr/local/sbin/webstack-nginx-validate {site} {site}")
    assert good.rc == 0, good.stderr
    assert host.file(site).sha256sum == before
    host.run("rm -f /tmp/nginx-broken.conf")


# --- TLS ----------------------------------------------------------------------


def test_https_certificate_is_signed_by_the_platform_ca(ip, ca_context):
    for name in (WEB, WEB_ALIAS, ADMIN):
        resp = https(ip, ca_context, "/healthz", server_name=name)
        assert resp.status == 200, name


def test_https_certificate_is_not_publicly_trusted(ip):
    # The system trust store does not know the platform CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        https(ip, ssl.create_default_context(), "/healthz")


def test_site_certificate_names_and_lifetime(ip, ca_context):
    sock = socket.create_connection((ip, 443), 10)
    with ca_context.wrap_socket(sock, server_hostname=WEB) as tls:
        cert = tls.getpeercert()
    sans = {value for kind, value in cert["subjectAltName"] if kind == "DNS"}
    assert sans == {WEB, WEB_ALIAS}
    fmt = "%b %d %H:%M:%S %Y %Z"
    lifetime = datetime.strptime(cert["notAfter"], fmt) - datetime.strptime(cert["notBefore"], fmt)
    assert lifetime.days <= 366  # Mozilla intermediate: at most 366 days


def test_mozilla_intermediate_profile_with_sslyze(ip, ca_file, tmp_path):
    sslyze = shutil.which("sslyze") or str(Path(sys.executable).with_name("sslyze"))
    out = tmp_path / "sslyze.json"
    proc = subprocess.run(
        [
            sslyze,
            "--mozilla_config=intermediate",
            f"--certinfo_ca_file={ca_file}",
            f"--json_out={out}",
            f"{WEB}:443{{{ip}}}",  # SNI and Host of the site, connection to the container
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{WEB}:443: OK - Compliant." in proc.stdout, proc.stdout[-4000:]
    result = json.loads(out.read_text())["server_scan_results"][0]["scan_result"]

    def accepted(version: str) -> list[str]:
        suites = result[f"{version}_cipher_suites"]["result"]["accepted_cipher_suites"]
        return [s["cipher_suite"]["name"] for s in suites]

    for refused in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
        assert accepted(refused) == [], f"{refused} accepted"
    assert accepted("tls_1_2"), "TLS 1.2 refused"
    assert accepted("tls_1_3"), "TLS 1.3 refused"
    assert all(name.startswith("TLS_ECDHE_") for name in accepted("tls_1_2"))


def test_tls_1_3_handshake_from_a_client(ip, ca_context):
    sock = socket.create_connection((ip, 443), 10)
    with ca_context.wrap_socket(sock, server_hostname=WEB) as tls:
        assert tls.version() == "TLSv1.3"


# --- HTTP ---------------------------------------------------------------------


def test_http_redirects_to_https(ip):
    resp = http_plain(ip, "/some/page?x=1")
    assert resp.status == 301
    assert resp.header("Location") == f"https://{WEB}/some/page?x=1"


def test_http_keeps_acme_challenge_and_healthz(host, ip):
    token = "webstack-test-token"
    host.run_expect(
        [0],
        f"mkdir -p /var/www/letsencrypt/.well-known/acme-challenge && "
        f"echo {token}-content > /var/www/letsencrypt/.well-known/acme-challenge/{token}",
    )
    for name in (WEB, PUBLIC):
        resp = http_plain(ip, f"/.well-known/acme-challenge/{token}", server_name=name)
        assert resp.status == 200, name
        assert resp.body.decode().strip() == f"{token}-content"
    host.run(f"rm -f /var/www/letsencrypt/.well-known/acme-challenge/{token}")
    assert http_plain(ip, "/healthz").status == 200
    # Load balancers checking by address (unknown Host) reach the default site.
    assert http_plain(ip, "/healthz", server_name=ip).status == 200


@pytest.mark.parametrize("path", ["/", "/api/items", ASSET, "/healthz", "/assets/missing.js"])
def test_security_headers(ip, ca_context, path):
    resp = https(ip, ca_context, path)
    assert resp.header("Strict-Transport-Security") == MOZILLA_HSTS
    assert resp.header("X-Frame-Options") == "SAMEORIGIN"
    assert resp.header("X-Content-Type-Options") == "nosniff"
    assert resp.header("X-XSS-Protection") == "1; mode=block"
    assert resp.header("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert (resp.header("Content-Security-Policy") or "").startswith(DEFAULT_CSP_START)
    assert "nginx/" not in (resp.header("Server") or "")


def test_site_csp_overrides_the_default(ip, ca_context):
    resp = https(ip, ca_context, "/", server_name=ADMIN)
    assert resp.header("Content-Security-Policy") == "default-src 'self'; frame-ancestors 'none'"


# --- reverse proxy --------------------------------------------------------------


def test_api_is_proxied_with_forwarding_headers(ip, ca_context):
    resp = https(ip, ca_context, "/api/items?page=2", method="POST")
    assert resp.status == 200
    data = resp.json()
    assert data["port"] == 5000
    assert data["method"] == "POST"
    assert data["path"] == "/api/items?page=2"
    headers = data["headers"]
    assert headers["host"] == WEB
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-real-ip"]
    assert headers["x-forwarded-for"].split(",")[-1].strip() == headers["x-real-ip"]
    assert "upgrade" not in headers


def test_api_health_is_proxied(ip, ca_context):
    resp = https(ip, ca_context, "/api/health")
    assert resp.status == 200
    assert resp.json() == {"status": "ok", "port": 5000}


def test_upstream_connections_are_kept_alive(host, ip, ca_context):
    for _ in range(3):
        assert https(ip, ca_context, "/api/ping").status == 200
    # Idle keepalive connections from nginx to the backend stay open.
    out = host.check_output("ss -Htn state established '( dport = :5000 )'")
    assert out.strip(), "no kept-alive connection from nginx to 127.0.0.1:5000"


def _upgrade(ip: str, ca_context: ssl.SSLContext, path: str) -> tuple[str, dict[str, str], str]:
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {WEB}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock = socket.create_connection((ip, 443), 10)
    with ca_context.wrap_socket(sock, server_hostname=WEB) as tls:
        tls.sendall(request.encode())
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = tls.recv(4096)
            if not chunk:
                break
            raw += chunk
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    status, *lines = head.split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return status, headers, key


def test_websocket_upgrade_for_websocket_apps(ip, ca_context):
    status, headers, key = _upgrade(ip, ca_context, "/ws/socket")
    assert " 101 " in status
    expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    assert headers["sec-websocket-accept"] == expected


def test_no_websocket_upgrade_for_other_apps(ip, ca_context):
    status, _, _ = _upgrade(ip, ca_context, "/api/socket")
    assert " 200 " in status


def test_host_based_app(ip, ca_context):
    resp = https(ip, ca_context, "/dashboard", server_name=ADMIN)
    assert resp.status == 200
    assert resp.json()["port"] == 3002
    assert https(ip, ca_context, "/health", server_name=ADMIN).json()["status"] == "ok"


# --- SPA ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/dashboard/settings/42", "/index.html"])
def test_spa_routes_serve_index_without_caching(ip, ca_context, path):
    resp = https(ip, ca_context, path)
    assert resp.status == 200
    assert b"webstack-spa-index" in resp.body
    assert resp.header("Cache-Control") == "no-cache"


def test_hashed_asset_is_immutable(ip, ca_context):
    resp = https(ip, ca_context, ASSET)
    assert resp.status == 200
    assert resp.header("Cache-Control") == "public, max-age=31536000, immutable"
    assert b"webstack asset line 199" in resp.body


def test_missing_asset_is_404_not_index(ip, ca_context):
    resp = https(ip, ca_context, "/assets/missing.3f9c2b71.js")
    assert resp.status == 404
    assert b"webstack-spa-index" not in resp.body


@pytest.mark.parametrize("path", [ASSET, "/api/items"])
def test_gzip(ip, ca_context, path):
    plain = https(ip, ca_context, path)
    packed = https(ip, ca_context, path, headers={"Accept-Encoding": "gzip"})
    assert packed.header("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in (packed.header("Vary") or "")
    assert len(packed.body) < len(plain.body)
    unpacked = gzip.decompress(packed.body)
    if path == ASSET:
        assert unpacked == plain.body
    else:
        assert json.loads(unpacked)["path"] == "/api/items"


# --- Let's Encrypt site (rendering only: no internet here) -----------------------


def test_letsencrypt_site_waits_with_the_placeholder_certificate(host, ip):
    site = host.file("/etc/nginx/webstack/sites/public.conf").content_string
    assert "ssl_certificate /etc/ssl/certs/ssl-cert-snakeoil.pem;" in site
    assert "ssl_stapling" not in site  # no stapling until the real certificate exists
    assert not host.file("/etc/letsencrypt/live/public").exists  # certbot was not run
    hook = host.file("/etc/letsencrypt/renewal-hooks/deploy/webstack-reload-nginx")
    assert hook.exists and hook.mode == 0o755
    assert "systemctl reload nginx" in hook.content_string
    assert host.service("certbot.timer").is_enabled
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    assert https(ip, ctx, "/healthz", server_name=PUBLIC).status == 200


# --- input validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sites", "expected"),
    [
        ([{"name": "p", "server_names": ["p.test"], "tls": {"mode": "acme"}}], "mode"),
        ([{"name": "p", "server_names": ["p.test"], "tls": {"mode": "letsencrypt"}}], "nginx_letsencrypt_email"),
        (
            [
                {
                    "name": "p",
                    "server_names": ["p.test"],
                    "tls": {"mode": "selfsigned_ca"},
                    "apps": [
                        {"name": "my-app", "upstream_port": 1, "path": "/a"},
                        {"name": "my_app", "upstream_port": 2, "path": "/b"},
                    ],
                }
            ],
            "webstack_<name>",
        ),
    ],
    ids=["unknown-tls-mode", "letsencrypt-without-email", "colliding-upstream-names"],
)
def test_bad_input_stops_before_any_change(host, sites, expected):
    before = host.file("/etc/nginx/webstack/sites/web.conf").sha256sum
    proc = run_converge(host.backend.get_hostname(), {"nginx_sites": sites}, check=True)
    # Errors go to stdout or stderr depending on display_failed_stderr.
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "nginx_sites" in output
    assert expected in output
    assert "changed=0" in proc.stdout
    assert host.file("/etc/nginx/webstack/sites/web.conf").sha256sum == before


def test_check_mode_with_a_single_api_plan(host):
    """The EEC-NIF shape (one site, SPA, one API on :5000, no Let's Encrypt) in check mode.

    Check mode reports what it would change (the other sites' files would go)
    and changes nothing.
    """
    site = {
        "name": "eec-nif",
        "server_names": ["eec-nif.webstack.test"],
        "tls": {"mode": "selfsigned_ca"},
        "spa_root": "/srv/spa",
        "apps": [{"name": "api", "path": "/api", "upstream_port": 5000}],
    }
    files = ["/etc/nginx/webstack/sites/web.conf", "/etc/nginx/webstack/sites/admin.conf", "/etc/nginx/nginx.conf"]
    before = {f: host.file(f).sha256sum for f in files}
    proc = run_converge(host.backend.get_hostname(), {"nginx_sites": [site]}, check=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "changed=0" not in proc.stdout
    assert {f: host.file(f).sha256sum for f in files} == before
    assert not host.file("/etc/nginx/webstack/sites/eec-nif.conf").exists


# --- bluegreen switch, maintenance and restart --------------------------------------


def _admin_port(ip: str, ca_context: ssl.SSLContext, want: int) -> int:
    """Port of the backend answering admin; waits for a reload to take effect.

    `systemctl reload nginx` returns once the master got the signal; new
    workers take over a moment later.
    """
    port = 0
    for _ in range(30):
        port = https(ip, ca_context, "/x", server_name=ADMIN).json()["port"]
        if port == want:
            break
        time.sleep(0.5)
    return port


def test_bluegreen_style_switch(host, ip, ca_context):
    """Rewrite an upstream file the way bluegreen does and reload gracefully.

    The converges of the maintenance tests below must leave it alone.
    """
    upstream = "/etc/nginx/webstack/upstreams/admin.conf"
    host.run_expect([0], "systemctl start webstack-test-backend@3003")
    host.run_expect(
        [0],
        f"printf 'upstream webstack_admin {{ server 127.0.0.1:3003; keepalive 16; }}\\n' > {upstream}.tmp && "
        f"mv {upstream}.tmp {upstream} && nginx -t -q && systemctl reload nginx",
    )
    assert _admin_port(ip, ca_context, 3003) == 3003


def test_maintenance_mode(host, ip, ca_context):
    proc = run_converge(host.backend.get_hostname(), {"nginx_maintenance_enabled": True})
    assert proc.returncode == 0, proc.stdout[-4000:]
    requests = [("/", "GET"), ("/dashboard", "GET"), ("/api/items", "GET"), ("/api/items", "POST"), (ASSET, "GET")]
    for path, method in requests:
        resp = https(ip, ca_context, path, method=method)
        assert resp.status == 503, (path, method)
        assert resp.header("Retry-After") == "600"
        assert b"Down for maintenance" in resp.body
        assert resp.header("Strict-Transport-Security") == MOZILLA_HSTS
    assert https(ip, ca_context, "/x", server_name=ADMIN).status == 503
    # Health checks keep passing: nginx's own and the apps' (still proxied).
    assert https(ip, ca_context, "/healthz").status == 200
    assert http_plain(ip, "/healthz").status == 200
    assert https(ip, ca_context, "/api/health").json()["status"] == "ok"
    assert https(ip, ca_context, "/health", server_name=ADMIN).json()["status"] == "ok"


def test_maintenance_mode_off_again(host, ip, ca_context):
    proc = run_converge(host.backend.get_hostname(), {"nginx_maintenance_enabled": False})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert https(ip, ca_context, "/").status == 200
    assert https(ip, ca_context, "/api/items").json()["port"] == 5000
    # The bluegreen-owned upstream file survived both converges.
    assert "127.0.0.1:3003" in host.file("/etc/nginx/webstack/upstreams/admin.conf").content_string
    assert _admin_port(ip, ca_context, 3003) == 3003


def test_nginx_survives_a_restart(host, ip, ca_context):
    host.run_expect([0], "systemctl restart nginx")
    assert host.service("nginx").is_running
    assert https(ip, ca_context, "/api/health").status == 200
    assert https(ip, ca_context, "/").status == 200
