"""The firewall as another host on the network sees it."""

import os

import pytest
import testinfra
import testinfra.utils.ansible_runner

# The instance names carry the run's prefix: take them from the inventory.
INSTANCES = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
BOOKWORM = testinfra.get_host("docker://" + next(n for n in INSTANCES if n.endswith("-bookworm")))
TRIXIE = testinfra.get_host("docker://" + next(n for n in INSTANCES if n.endswith("-trixie")))


def _ip(host):
    """The host's address on the scenario network (a Docker host also has docker0's)."""
    return host.check_output("python3 -c 'import socket; print(socket.gethostbyname(socket.gethostname()))'").strip()


def _connects(client, target, port):
    """True when a TCP connection from client to target:port completes within 3 s."""
    cmd = f"timeout 3 bash -c 'exec 3<>/dev/tcp/{target}/{port}' 2>/dev/null"
    return client.run(cmd).rc == 0


@pytest.fixture(scope="module")
def bookworm_ip():
    return _ip(BOOKWORM)


@pytest.fixture(scope="module")
def trixie_ip():
    return _ip(TRIXIE)


def test_declared_port_is_open(bookworm_ip):
    assert _connects(TRIXIE, bookworm_ip, 8443)


def test_undeclared_port_is_closed(bookworm_ip):
    # Something listens on 8081, but no role declared it.
    assert BOOKWORM.socket("tcp://0.0.0.0:8081").is_listening
    assert not _connects(TRIXIE, bookworm_ip, 8081)


def test_rule_limited_to_source_network(bookworm_ip):
    assert _connects(TRIXIE, bookworm_ip, 9100)


def test_ssh_only_from_admin_networks(bookworm_ip, trixie_ip):
    assert BOOKWORM.socket("tcp://0.0.0.0:22").is_listening
    assert not _connects(TRIXIE, bookworm_ip, 22), "SSH reachable from outside firewall_admin_cidrs"
    assert _connects(BOOKWORM, trixie_ip, 22), "SSH not reachable from firewall_admin_cidrs"


def test_policies_and_rules():
    status = BOOKWORM.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "deny (incoming), allow (outgoing)" in status
    added = BOOKWORM.check_output("ufw show added")
    assert "7000" not in added, "a rule nobody declares any more was kept"
    assert "ufw allow 7001/tcp" in added, "a rule added by hand was removed"
    assert "webstack:probe-https:" in added


def test_firewall_survives_restart(bookworm_ip):
    assert BOOKWORM.run("systemctl restart ufw").rc == 0
    assert _connects(TRIXIE, bookworm_ip, 8443)
    assert not _connects(TRIXIE, bookworm_ip, 8081)


def test_ssh_is_rate_limited(trixie_ip):
    # ufw "limit": from one source, a 7th new connection within 30 s is dropped
    # (earlier tests may already have used some of the six).
    results = [_connects(BOOKWORM, trixie_ip, 22) for _ in range(8)]
    assert results[0], results
    assert False in results, results
    assert results.count(True) <= 6, results


def test_undeclared_published_port_is_refused(trixie_ip):
    # probe-7777 publishes 7777 -> 5000 on every address; no rule allows 5000.
    assert "0.0.0.0:7777->5000/tcp" in TRIXIE.check_output("docker ps --filter name=probe-7777")
    assert _connects(TRIXIE, "127.0.0.1", 7777), "the container does not answer on the host itself"
    assert not _connects(BOOKWORM, trixie_ip, 7777), "an undeclared published port is reachable from another host"


def test_declared_published_port_connects(trixie_ip):
    # probe-7778 publishes 7778 -> 5001; a route rule allows 5001.
    assert _connects(BOOKWORM, trixie_ip, 7778)
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://{trixie_ip}:7778/', timeout=5).status)"
    result = BOOKWORM.run(f'python3 -c "{fetch}"')
    assert result.stdout.strip() == "200", result.stderr


def test_published_ports_stay_filtered_after_restarts(trixie_ip):
    # ufw reloads its after.rules; dockerd keeps DOCKER-USER first in FORWARD.
    assert TRIXIE.run("systemctl restart ufw").rc == 0
    assert not _connects(BOOKWORM, trixie_ip, 7777)
    assert _connects(BOOKWORM, trixie_ip, 7778)
    assert TRIXIE.run("systemctl restart docker && docker start probe-7777 probe-7778").rc == 0
    assert TRIXIE.check_output("iptables -S FORWARD").splitlines()[1] == "-A FORWARD -j DOCKER-USER"
    assert not _connects(BOOKWORM, trixie_ip, 7777)
    assert _connects(BOOKWORM, trixie_ip, 7778)


def test_containers_still_reach_out(trixie_ip, bookworm_ip):
    # Traffic the containers start (replies included) is not filtered.
    connect = f"import socket; socket.create_connection(('{bookworm_ip}', 8443), 3)"
    assert TRIXIE.run(f'docker exec probe-7777 /usr/bin/python3 -c "{connect}"').rc == 0


def test_docker_filter_only_on_docker_hosts():
    assert "DOCKER-USER" in TRIXIE.file("/etc/ufw/after.rules").content_string
    assert "DOCKER-USER" not in BOOKWORM.file("/etc/ufw/after.rules").content_string
    route = TRIXIE.check_output("ufw show added")
    assert "ufw route allow" in route and "webstack:probe-published:" in route
