"""An Auto Scaling instance converges itself: the launch template's user data, run on a fresh Debian 13
host container, ends with the host serving the version recorded for its colour.

What is real: the user data is the ec2_autoscaling role's template rendered with the prod inventory;
the instance is one moto started for the Auto Scaling group ``webstack-prod-blue`` (whose tags
AppVersion:<app>/Colour/Role a release sets); the container installs Debian's ``ansible`` and
``python3-boto3``, downloads the collection artifact (``ansible-galaxy collection build`` of this
checkout) and the environment's extra values from moto's S3, and runs the collection's ``site.yml`` on
itself with the prod inventory's group_vars from the artifact. Then nginx answers over TLS with
the sample API at the version of the instance's tag AppVersion:sample-api.

What stands in for AWS: moto server (S3, EC2, Auto Scaling) on the Docker bridge, a small instance
metadata service in this process that answers from moto's instance (IMDSv2 token, region, instance
ID, instance tags), credentials in the environment instead of an instance profile. The app images
are loaded into the container's engine before the user data runs: no registry is reachable from a
container here (on AWS the instance pulls from ECR).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from conftest import FAKE_CREDENTIALS, UNSET, free_port_in, stop, wait_http
from test_ec2_autoscaling import ACCOUNT, REGION, port_range

# Long (a fresh host installs Ansible from Debian, then converges) and it needs
# Debian's mirror from inside a container: its own stage, `tools/test.sh aws-boot`.
pytestmark = pytest.mark.skipif(
    not os.environ.get("WEBSTACK_TEST_AWS_BOOT"), reason="set WEBSTACK_TEST_AWS_BOOT=1 (tools/test.sh aws-boot)"
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PORTS = port_range(range(26100, 26200))
NAME = "webstack-prod"
BUCKET = f"webstack-prod-artifacts-{ACCOUNT}"
VERSION = "v2"  # what the blue group's tag AppVersion:sample-api records (the inventory default: v1)
APP = "sample-api"  # the app the instance runs (the local platform's first)
IMAGES = [f"webstack/sample-api:{VERSION}"]
RUN = uuid.uuid4().hex[:6]
CONTAINER = f"aws-boot-{RUN}"
# The golden image (tools/images.sh awsboot): the instance's packages are there, as on an AMI baked
# for fast boots. WEBSTACK_TEST_AWS_BOOT_IMAGE=webstack/dockerhost:trixie boots one without them
# (the user data then installs Ansible from Debian: much longer).
HOST_IMAGE = os.environ.get("WEBSTACK_TEST_AWS_BOOT_IMAGE", "webstack/awsboot:trixie")
# Container start to serving, on an idle 2-core machine: the budget of this test in the suite.
BUDGET_SECONDS = 8 * 60


def docker(*args: str, timeout: float = 120, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check, **kw)


def bridge_gateway() -> str:
    """The machine's address on Docker's default bridge (what containers reach it at)."""
    out = docker("network", "inspect", "bridge", "-f", "{{range .IPAM.Config}}{{.Gateway}}|{{.Subnet}}{{end}}").stdout
    gateway, _, subnet = out.strip().partition("|")
    return gateway or str(next(ipaddress.ip_network(subnet).hosts()))


@pytest.fixture(scope="module")
def gateway() -> str:
    return bridge_gateway()


@pytest.fixture(scope="module")
def moto(gateway: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto server on the bridge address, so the container reaches it."""
    port = free_port_in(PORTS, gateway)
    log = tmp_path_factory.mktemp("aws-boot-moto") / "moto.log"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**FAKE_CREDENTIALS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}.items():
            mp.setenv(key, value)
        for key in UNSET:
            mp.delenv(key, raising=False)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", gateway, "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, MOTO_ACCOUNT_ID=ACCOUNT),
            )
        url = f"http://{gateway}:{port}"
        try:
            wait_http(f"{url}/moto-api/", proc, log)
            yield url
        finally:
            stop(proc)


@pytest.fixture(scope="module")
def aws(moto: str) -> Callable:
    import boto3

    return lambda service: boto3.client(service, endpoint_url=moto, region_name=REGION)


def render_user_data(moto: str, tmp: Path, boot_vars_key: str) -> str:
    """The user data the launch template of the prod inventory gets (role entry point ``user_data``)."""
    play = [
        {
            "name": "Render the user data",
            "hosts": "aws_control",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Render",
                    "ansible.builtin.include_role": {
                        "name": "webstack.deploy.ec2_autoscaling",
                        "tasks_from": "user_data",
                    },
                    "vars": {
                        "ec2_autoscaling_boot_bucket": BUCKET,
                        "ec2_autoscaling_boot_vars_key": boot_vars_key,
                        # the agent's package comes from an AWS bucket that no container here reaches
                        "ec2_autoscaling_boot_cloudwatch_agent": False,
                        # no log collector runs in this test (log shipping needs one to connect to)
                        "ec2_autoscaling_boot_skip_tags": ["logs"],
                    },
                },
                {"name": "Show", "ansible.builtin.debug": {"var": "ec2_autoscaling_user_data"}},
            ],
        }
    ]
    path = tmp / "render.yml"
    path.write_text(json.dumps(play))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        AWS_URL=moto,
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/prod", str(path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index("{") :])
    (show,) = [t for t in report["plays"][0]["tasks"] if t["task"]["name"] == "Show"]
    return show["hosts"]["localhost"]["ec2_autoscaling_user_data"]


def boot_vars() -> dict:
    """The environment's extra values for this test: the local fleet's app host values (same site, same
    stack) for the sample API alone, minus what only the local fleet does (images from this machine, the
    SPA build)."""
    local = yaml.safe_load((REPO_ROOT / "inventories/local/group_vars/app.yml").read_text())
    for key in ("local_fleet_images", "platform_spa_source", "platform_spa_root"):
        local.pop(key, None)
    host = yaml.safe_load((REPO_ROOT / "inventories/local/group_vars/local.yml").read_text())
    # The app at the version its colour group records; no data host in this test (the API then
    # reports Redis unavailable and stays healthy), so the release's smoke test asks what needs none.
    apps = [
        {
            **app,
            "version": f"{{{{ webstack_app_versions['{APP}'] | default('v1') }}}}",
            "env": {"LOG_DIR": "/tmp"},
            "volumes": [],
            "smoke_tests": [{"path": "/api/version"}],
        }
        for app in local["webstack_apps"]
        if app["name"] == APP
    ]
    sites = [
        {**site, "apps": [app for app in site.get("apps", []) if app["name"] == APP]} for site in local["nginx_sites"]
    ]
    return {
        **local,
        "webstack_apps": apps,
        "nginx_sites": sites,
        "log_shipping_apps": [app for app in local.get("log_shipping_apps", []) if app["name"] == APP],
        # a container shares the machine's kernel
        "base_sysctl_apply": False,
        "base_admin_users": host["base_admin_users"],  # the local fleet's fake user, not prod's secrets
        "firewall_admin_cidrs": host["firewall_admin_cidrs"],
    }


class Metadata(BaseHTTPRequestHandler):
    """IMDSv2 of one instance: token, region, instance ID, instance tags."""

    values: ClassVar[dict[str, str]] = {}

    def do_PUT(self):
        self._send(200, "token-of-the-test" if self.path == "/latest/api/token" else None)

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != "token-of-the-test":
            self._send(401, None)
            return
        self._send(200, self.values.get(self.path.removeprefix("/latest/")))

    def _send(self, code: int, body: str | None):
        if body is None:
            code = 404 if code == 200 else code
        self.send_response(code)
        self.end_headers()
        if body is not None:
            self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def instance(aws: Callable, moto: str, gateway: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Artifact and values in S3, the launch template with the rendered user data, the blue group's
    instance in moto and a metadata service answering for it."""
    tmp = tmp_path_factory.mktemp("aws-boot")
    s3 = aws("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    build = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-galaxy"),
            "collection",
            "build",
            "--force",
            "--output-path",
            str(tmp),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    (artifact,) = tmp.glob("webstack-deploy-*.tar.gz")
    s3.upload_file(str(artifact), BUCKET, "webstack-deploy.tar.gz")
    s3.put_object(Bucket=BUCKET, Key="prod/boot-vars.yml", Body=yaml.safe_dump(boot_vars()).encode())
    user_data = render_user_data(moto, tmp, "prod/boot-vars.yml")

    ec2, autoscaling = aws("ec2"), aws("autoscaling")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName=NAME,
        LaunchTemplateData={
            "ImageId": ami,
            "InstanceType": "t3.medium",
            "UserData": base64.b64encode(user_data.encode()).decode(),
        },
    )
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    tags = {"Project": NAME, "Environment": "prod", "Colour": "blue", f"AppVersion:{APP}": VERSION, "Role": "app"}
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=f"{NAME}-blue",
        LaunchTemplate={"LaunchTemplateName": NAME, "Version": "$Latest"},
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        VPCZoneIdentifier=subnet,
        Tags=[
            {
                "Key": k,
                "Value": v,
                "PropagateAtLaunch": True,
                "ResourceId": f"{NAME}-blue",
                "ResourceType": "auto-scaling-group",
            }
            for k, v in tags.items()
        ],
    )
    (member,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{NAME}-blue"])["AutoScalingGroups"][
        0
    ]["Instances"]
    (found,) = [
        i for r in ec2.describe_instances(InstanceIds=[member["InstanceId"]])["Reservations"] for i in r["Instances"]
    ]
    stored = base64.b64decode(
        ec2.describe_launch_template_versions(LaunchTemplateName=NAME)["LaunchTemplateVersions"][0][
            "LaunchTemplateData"
        ]["UserData"]
    ).decode()
    values = {
        "meta-data/placement/region": REGION,
        "meta-data/instance-id": found["InstanceId"],
        **{f"meta-data/tags/instance/{t['Key']}": t["Value"] for t in found.get("Tags", [])},
        # The list of the instance's tag keys, one a line, as IMDS answers it.
        "meta-data/tags/instance": "\n".join(t["Key"] for t in found.get("Tags", [])),
    }
    Metadata.values = values
    server = ThreadingHTTPServer((gateway, free_port_in(PORTS, gateway)), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield {
            "user_data": stored,
            "imds": f"http://{gateway}:{server.server_address[1]}",
            "tags": {k.rsplit("/", 1)[1]: v for k, v in values.items() if "/tags/instance/" in k},
            "build": build.stdout,
        }
    finally:
        server.shutdown()


def cpu_seconds(container: str) -> float | None:
    """CPU time the container's processes used so far (its cgroup: v1 cpuacct, v2 cpu.stat), None if unknown.

    On a loaded machine the wall time of a boot mostly measures the other work; its CPU time is what the
    boot itself costs, about its wall time on an idle machine (Ansible runs one task at a time)."""
    cid = docker("inspect", "-f", "{{.Id}}", container).stdout.strip()
    for path in (
        Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage"),
        Path(f"/sys/fs/cgroup/cpu,cpuacct/docker/{cid}/cpuacct.usage"),
    ):
        if path.is_file():
            return int(path.read_text()) / 1e9
    for path in (
        Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"),
        Path(f"/sys/fs/cgroup/docker/{cid}/cpu.stat"),
    ):
        if path.is_file():
            stat = dict(line.split() for line in path.read_text().splitlines())
            return int(stat["usage_usec"]) / 1e6
    return None


def https_get(ip: str, path: str) -> tuple[int, str]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(f"https://{ip}{path}", headers={"Host": "sample.webstack.test"})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.fixture(scope="module")
def host_image() -> str:
    """The image the instance boots from; the golden one is built (once, then kept) by tools/images.sh."""
    if HOST_IMAGE == "webstack/awsboot:trixie":
        start = time.monotonic()
        build = subprocess.run(
            [str(REPO_ROOT / "tools/images.sh"), "awsboot"], capture_output=True, text=True, timeout=1800, check=False
        )
        assert build.returncode == 0, build.stdout + build.stderr
        print(f"boot image: {build.stdout.strip()} ({time.monotonic() - start:.0f} s)")
    assert docker("image", "inspect", HOST_IMAGE, check=False).returncode == 0, f"no image {HOST_IMAGE}"
    return HOST_IMAGE


@pytest.fixture(scope="module")
def booted(instance: dict, moto: str, host_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Start a fresh host container, run the user data in it as cloud-init would; time start -> serving."""
    missing = [i for i in IMAGES if docker("image", "inspect", i, check=False).returncode != 0]
    if missing:
        pytest.fail(f"app images missing (tools/app-images.sh builds them): {missing}")
    volume = f"{CONTAINER}-docker"
    load_before = os.getloadavg()
    started = time.monotonic()
    docker(
        "run", "-d", "--name", CONTAINER, "--hostname", CONTAINER,
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "-v", f"{volume}:/var/lib/docker",
        "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
        host_image,
    )  # fmt: skip
    log = tmp_path_factory.mktemp("aws-boot-run") / "user-data.log"
    try:
        ip = docker(
            "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", CONTAINER
        ).stdout.strip()
        # The app images, as ECR would give them (no registry is reachable from a container here).
        deadline = time.monotonic() + 180
        while docker("exec", CONTAINER, "docker", "info", check=False).returncode != 0:
            assert time.monotonic() < deadline, "the container's Docker engine did not start"
            time.sleep(2)
        save = subprocess.Popen(["docker", "save", *IMAGES], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "exec", "-i", CONTAINER, "docker", "load"],
            stdin=save.stdout,
            check=True,
            capture_output=True,
            timeout=600,
        )
        save.wait(timeout=60)
        docker("exec", "-i", CONTAINER, "sh", "-c", "cat > /var/lib/cloud-user-data.sh", input=instance["user_data"])
        env = {
            "WEBSTACK_IMDS_URL": instance["imds"],
            "AWS_ENDPOINT_URL": moto,
            "AWS_URL": moto,
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }
        args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        boot_started = time.monotonic()
        proc = subprocess.run(
            ["docker", "exec", *args, CONTAINER, "bash", "/var/lib/cloud-user-data.sh"],
            capture_output=True,
            text=True,
            # golden image: minutes; without it (apt: ansible) about 30 min at load 25 on 2 cores
            timeout=3600,
        )
        log.write_text(proc.stdout + proc.stderr)
        finished = time.monotonic()
        serving = None
        body = ""
        while time.monotonic() < finished + 60:
            status, body = https_get(ip, "/api/version")
            if status == 200:
                serving = time.monotonic()
                break
            time.sleep(1)
        result = {
            "rc": proc.returncode,
            "log": proc.stdout + proc.stderr,
            "ip": ip,
            "version_body": body,
            "seconds_to_serving": (serving - started) if serving else None,
            "seconds_user_data": finished - boot_started,
            "seconds_images": boot_started - started,
            "cpu_seconds": cpu_seconds(CONTAINER),
        }
        to_serving = result["seconds_to_serving"]
        print(
            f"boot ({host_image}): container start -> serving "
            f"{'never' if to_serving is None else f'{to_serving:.0f} s'} "
            f"(engine + app image load {result['seconds_images']:.0f} s, "
            f"user data {result['seconds_user_data']:.0f} s); "
            f"CPU time of the instance {result['cpu_seconds']} s; "
            f"load average before {load_before}, after {os.getloadavg()}; log {log}"
        )
        for line in result["log"].splitlines():
            if line.startswith("webstack boot:"):
                print(f"  {line}")
        yield result
    finally:
        docker("rm", "-f", "-v", CONTAINER, check=False)
        docker("volume", "rm", volume, check=False)


def test_user_data_comes_from_the_launch_template_and_pulls_the_collection(instance: dict):
    assert "ansible-galaxy collection install" in instance["user_data"]
    assert "meta-data/tags/instance" in instance["user_data"]
    assert "AppVersion:" in instance["user_data"]
    assert BUCKET in instance["user_data"]
    assert instance["tags"][f"AppVersion:{APP}"] == VERSION  # propagated from the group by moto
    assert instance["tags"]["Role"] == "app"


def test_instance_converges_and_serves_the_version_of_its_colour(booted: dict):
    assert booted["rc"] == 0, booted["log"][-6000:]
    assert "webstack boot: converged" in booted["log"]
    assert booted["seconds_to_serving"] is not None, booted["log"][-3000:]
    served = json.loads(booted["version_body"])
    assert served["version"] == VERSION
    if HOST_IMAGE == "webstack/awsboot:trixie":
        # The golden image is held to the budget: its boot's CPU time always (what it costs, whatever else
        # runs), its wall time on an idle machine. Both and the load are printed above.
        assert "webstack boot: installing" not in booted["log"]  # nothing left to install
        if booted["cpu_seconds"] is not None:
            assert booted["cpu_seconds"] < BUDGET_SECONDS
        if os.getloadavg()[0] < 2:
            assert booted["seconds_to_serving"] < BUDGET_SECONDS


def test_base_firewall_and_nginx_are_applied(booted: dict):
    def run(*cmd: str) -> str:
        return docker("exec", CONTAINER, *cmd, check=False).stdout

    assert "webstack-admin" in run("getent", "passwd", "webstack-admin")  # base: admin users
    assert "Status: active" in run("ufw", "status")  # firewall
    assert "443/tcp" in run("ufw", "status")  # nginx declared its port
    assert run("systemctl", "is-active", "nginx").strip() == "active"
    status, _ = https_get(booted["ip"], "/healthz")
    assert status == 200
