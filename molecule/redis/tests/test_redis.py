"""redis-server as the app host and the machine see it: auth, firewall, settings, restart."""

import os
import socket

import pytest
import testinfra
import testinfra.utils.ansible_runner

# The instance names carry the run's prefix: take them from the inventory.
INSTANCES = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
DATA = testinfra.get_host("docker://" + next(n for n in INSTANCES if n.endswith("-data")))
APP = testinfra.get_host("docker://" + next(n for n in INSTANCES if n.endswith("-app")))
# The fake passwords of converge.yml.
PASSWORD = "molecule-fake-redis-password"
MONITOR = "molecule-fake-monitor-password"


@pytest.fixture(scope="module")
def data_ip():
    return DATA.check_output("hostname -I").split()[0]


def cli(host, target, *args, user=None, password=None):
    """redis-cli on ``host`` against ``target``; returns (rc, output). Passwords go by environment."""
    auth = f"--user {user} " if user else ""
    env = f"REDISCLI_AUTH={password} " if password else ""
    cmd = host.run(f"{env}timeout 5 redis-cli --no-auth-warning -h {target} -p 6379 {auth}{' '.join(args)}")
    return cmd.rc, (cmd.stdout + cmd.stderr).strip()


def test_client_without_password_is_refused(data_ip):
    _rc, out = cli(APP, data_ip, "GET", "probe")
    assert "NOAUTH" in out, out


def test_wrong_password_is_refused(data_ip):
    _rc, out = cli(APP, data_ip, "PING", password="not-the-password-at-all")
    assert "WRONGPASS" in out or "invalid" in out, out


def test_client_with_password_works_from_the_app_host(data_ip):
    assert cli(APP, data_ip, "SET", "probe", "from-app", password=PASSWORD)[1] == "OK"
    assert cli(APP, data_ip, "GET", "probe", password=PASSWORD)[1] == "from-app"


def test_bound_to_loopback_and_private_address_only(data_ip):
    listeners = DATA.check_output("ss -Hltn 'sport = :6379'")
    addresses = sorted(line.split()[3] for line in listeners.splitlines())
    assert addresses == sorted([f"{data_ip}:6379", "127.0.0.1:6379"]), listeners


def test_machine_outside_the_app_group_is_blocked(data_ip):
    # This test runs on the machine: not an app host, so ufw drops the SYN
    # (a timeout; "refused" would mean nothing listens and prove nothing).
    with pytest.raises(TimeoutError):
        socket.create_connection((data_ip, 6379), timeout=3).close()


def test_settings_are_effective_through_an_acl_user():
    def get(name):
        rc, out = cli(DATA, "127.0.0.1", "CONFIG", "GET", name, user="monitor", password=MONITOR)
        assert rc == 0, out
        return out.splitlines()[1]

    assert get("maxmemory") == str(64 * 1024 * 1024)
    assert get("maxmemory-policy") == "allkeys-lru"
    assert get("appendonly") == "yes"
    assert get("protected-mode") == "yes"
    assert get("save") == "3600 1 300 100 60 10000"
    assert get("disable-thp") == "yes"


def test_acl_user_may_do_only_what_its_rules_allow():
    _rc, out = cli(DATA, "127.0.0.1", "SET", "k", "v", user="monitor", password=MONITOR)
    assert "NOPERM" in out, out


def test_app_user_may_not_administer(data_ip):
    _rc, out = cli(APP, data_ip, "CONFIG", "GET", "maxmemory", password=PASSWORD)
    assert "NOPERM" in out, out


def test_dangerous_commands_are_gone(data_ip):
    for command in ("FLUSHALL", "FLUSHDB", "DEBUG SLEEP 0"):
        _rc, out = cli(APP, data_ip, command, password=PASSWORD)
        assert "unknown command" in out, (command, out)
    assert cli(APP, data_ip, "GET", "probe", password=PASSWORD)[1] == "from-app"


def test_data_survives_a_restart(data_ip):
    assert cli(APP, data_ip, "SET", "durable", "kept-over-restart", password=PASSWORD)[1] == "OK"
    DATA.check_output("systemctl restart redis-server")
    assert DATA.service("redis-server").is_running
    assert cli(APP, data_ip, "GET", "durable", password=PASSWORD)[1] == "kept-over-restart"


def test_no_password_in_files_or_logs():
    for path in ("/etc/redis/redis.conf", "/etc/redis/users.conf", "/var/log/redis/redis-server.log"):
        assert PASSWORD not in DATA.check_output(f"cat {path}"), path
    users = DATA.file("/etc/redis/users.conf")
    assert users.user == "root" and users.group == "redis" and users.mode == 0o640


def test_kernel_settings_written_not_loaded_on_a_container():
    sysctl = DATA.file("/etc/sysctl.d/60-redis.conf")
    assert sysctl.contains("^vm.overcommit_memory = 1$")
    # The machine's kernel is shared and stays as it is.
    assert DATA.check_output("systemctl is-enabled redis-disable-thp.service || true") == "disabled"


def test_service_hardening():
    show = DATA.check_output("systemctl show redis-server -p LimitNOFILE -p ReadWritePaths -p ProtectSystem")
    assert "LimitNOFILE=65535" in show
    assert "ProtectSystem=strict" in show
    assert "/etc/redis" not in show, "redis-server may rewrite its Ansible-owned config"
