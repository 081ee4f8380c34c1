"""What an administrator sees on a host after the base role."""

import os

import pytest
import testinfra

KEY = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "id_alice")


def _peer(host):
    """The other instance of the scenario, used as an SSH client."""
    name = host.backend.get_hostname()
    base, _, release = name.rpartition("-")
    other = f"{base}-{'trixie' if release == 'bookworm' else 'bookworm'}"
    return testinfra.get_host(f"docker://{other}")


def _ip(host):
    return host.check_output("hostname -I").split()[0]


@pytest.fixture(scope="module")
def client(host):
    peer = _peer(host)
    peer.run("apt-get install -y -qq openssh-client >/dev/null 2>&1 || true")
    with open(KEY, encoding="ascii") as handle:
        key = handle.read()
    peer.run("install -d -m 0700 /root/.ssh")
    cmd = f"cat > /root/.ssh/id_alice <<'EOF'\n{key}EOF\nchmod 0600 /root/.ssh/id_alice"
    assert peer.run(cmd).rc == 0
    return peer


def _ssh(client, target_ip, user, command, extra=""):
    return client.run(
        f"ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"-o ConnectTimeout=5 {extra} {user}@{target_ip} {command}"
    )


def test_admin_logs_in_with_key_and_uses_sudo(host, client):
    result = _ssh(client, _ip(host), "alice", "sudo -n id -u", "-i /root/.ssh/id_alice")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_root_login_refused(host, client):
    result = _ssh(client, _ip(host), "root", "true", "-i /root/.ssh/id_alice")
    assert result.rc != 0
    assert "Permission denied" in result.stderr


def test_password_login_not_offered(host, client):
    result = _ssh(client, _ip(host), "alice", "true", "-o PreferredAuthentications=password -o PubkeyAuthentication=no")
    assert result.rc != 0
    # The server lists the methods it accepts: public keys only.
    assert "Permission denied (publickey)" in result.stderr


def test_sshd_effective_settings(host):
    settings = dict(line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line)
    assert settings["permitrootlogin"] == "no"
    assert settings["passwordauthentication"] == "no"
    assert settings["x11forwarding"] == "no"
    assert "cbc" not in settings["ciphers"]
    assert set(settings["macs"].split(",")) <= {
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "umac-128-etm@openssh.com",
    }


def test_sshd_survives_restart(host):
    assert host.run("systemctl restart ssh").rc == 0
    assert host.service("ssh").is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_password_is_hashed_with_sha512(host):
    shadow = host.check_output("getent shadow alice")
    field = shadow.split(":")[1]
    assert field.startswith("$6$")
    assert "molecule-fake-password" not in shadow


def test_user_without_sudo(host):
    bob = host.user("bob")
    assert "webstack-admins" not in bob.groups
    assert "adm" in bob.groups
    assert host.run("sudo -n -u bob sudo -n true").rc != 0


def test_timezone(host):
    assert host.file("/etc/localtime").linked_to.endswith("Europe/Berlin")


def test_kernel_hardening_file(host):
    content = host.file("/etc/sysctl.d/90-webstack-hardening.conf").content_string
    assert "kernel.kptr_restrict = 2" in content
    assert "net.ipv4.tcp_syncookies = 1" in content


def test_unattended_upgrades_security_only(host):
    result = host.run("unattended-upgrade --dry-run --debug 2>&1 | grep -i 'Allowed origins'")
    assert "Debian-Security" in result.stdout
    assert host.file("/etc/apt/apt.conf.d/20auto-upgrades").contains('Unattended-Upgrade "1"')
