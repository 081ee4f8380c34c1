"""Roles aws_network, aws_iam and ec2_autoscaling against a moto server: check -> apply -> apply -> check,
then what AWS holds (and the collection artifact playbooks/aws.yml uploads for booting instances).

playbooks/provision_aws.yml runs with the prod inventory (min 2 / max 10 instances, alarm e-mail, two
Redis nodes) and ``aws_endpoint_url`` pointing at moto, so every call takes the boto3 path it takes on AWS.

The moto server here is this module's own: the role attaches AWS managed policies to the instance
role, and moto only knows them when started with MOTO_IAM_LOAD_MANAGED_POLICIES=true (the session
server of conftest.py is not). moto leaves out some ALB attributes (idle timeout, drop invalid
headers), so the run keeps those at the AWS defaults: the role sends only what differs from them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FAKE_CREDENTIALS, UNSET, free_port_in, stop, wait_http

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"  # the inventories' aws_region
NAME = "webstack-prod"
# The account moto serves (MOTO_ACCOUNT_ID): not one of AWS's documentation IDs
# (123456789012, moto's default), which the preflight refuses as a placeholder.
ACCOUNT = "210987654321"


def port_range(default: range) -> range:
    """Ports of the servers the AWS tests start: ``default``, or WEBSTACK_TEST_AWS_PORTS (``first-last``)
    so that two runs on one machine keep to ranges of their own. Under pytest-xdist each worker takes its
    own slice of the range: two workers never pick the same free port at the same time."""
    given = os.environ.get("WEBSTACK_TEST_AWS_PORTS", "")
    ports = default
    if given:
        first, _, last = given.partition("-")
        ports = range(int(first), int(last) + 1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and count > 1:
        size = len(ports) // count
        index = int(worker[2:]) % count
        if size == 0:
            raise RuntimeError(f"port range {ports.start}-{ports.stop - 1} is too small for {count} xdist workers")
        return ports[index * size : (index + 1) * size]
    return ports


# Ports of the servers these tests start (moto): this range only, so runs of
# other test suites on the same machine never collide with them.
PORTS = port_range(range(26000, 26100))


@dataclass
class Run:
    rc: int
    changed: int
    failures: list[str]
    tasks: dict[str, list[dict]]
    seconds: float
    output: str


def task(run: Run, name: str) -> list[dict]:
    """Results of the task called ``name`` (role tasks are reported as ``<role> : <name>``)."""
    found = [results for full, results in run.tasks.items() if full == name or full.endswith(f" : {name}")]
    assert found, f"no task {name!r} in {sorted(run.tasks)}"
    return found[0]


def moto_with_managed_policies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run a moto server with AWS managed IAM policies loaded; yield its URL (fixture body, shared).

    A port another process took between the check and moto's bind would let this fixture talk to that
    process's server: the server must still run a moment after the port answered, else another port is tried."""
    log = tmp_path_factory.mktemp("moto-ec2asg") / "moto.log"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**FAKE_CREDENTIALS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}.items():
            mp.setenv(key, value)
        for key in UNSET:
            mp.delenv(key, raising=False)
        env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true", MOTO_ACCOUNT_ID=ACCOUNT)
        for _attempt in range(5):
            port = free_port_in(PORTS)
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            url = f"http://127.0.0.1:{port}"
            try:
                wait_http(f"{url}/moto-api/", proc, log)
            except pytest.fail.Exception:
                if "Address already in use" in log.read_text():
                    continue  # exited: the port was taken in between
                raise
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                break  # still running: the server that answered is this one
        else:
            pytest.fail(f"moto never kept a port of {PORTS.start}-{PORTS.stop - 1}:\n{log.read_text()[-3000:]}")
        try:
            yield url
        finally:
            stop(proc)


def clients(endpoint: str) -> Callable:
    """``clients(url)("ec2")``: boto3 clients of the server."""
    import boto3

    def client(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION)

    return client


ALARM_EMAIL = "ops@webstack.io"


def account_vars(aws: Callable) -> dict:
    """What a real account provides in place of the inventories' placeholders: the account ID, an ACM
    certificate and an AMI of the region, an alarm address."""
    cert = aws("acm").request_certificate(DomainName="www.webstack.io")["CertificateArn"]
    ami = aws("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return {
        "aws_account_id": ACCOUNT,
        "ec2_autoscaling_certificate_arn": cert,
        "ec2_autoscaling_ami_id": ami,
        "ec2_autoscaling_alarm_email": ALARM_EMAIL,
        "webstack_domain": "www.webstack.io",
        "ec2_autoscaling_alb_drop_invalid_header_fields": False,
    }


@pytest.fixture(scope="module")
def aws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from moto_with_managed_policies(tmp_path_factory)


@pytest.fixture(scope="module")
def aws(aws_server: str) -> Callable:
    return clients(aws_server)


@pytest.fixture(scope="module")
def base_vars(aws: Callable) -> dict:
    # prod's Redis runs on instances; the ElastiCache alarms are exercised with two node IDs here.
    return {
        **account_vars(aws),
        "ec2_autoscaling_redis_cluster_ids": ["webstack-prod-redis-001", "webstack-prod-redis-002"],
    }


def run_playbook(
    endpoint: str,
    playbook: str,
    inventory: str,
    extra: dict,
    check: bool = False,
    diff: bool = True,
    limit: str | None = None,
    tags: str | None = None,
) -> Run:
    """ansible-playbook with the JSON callback; counts changed tasks from the stats (the PLAY RECAP).

    ``playbook``: a name under playbooks/ (``provision_aws``) or a path from the repository root
    (``site.yml``).
    """
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        f"inventories/{inventory}",
        playbook if playbook.endswith(".yml") else f"playbooks/{playbook}.yml",
        "-e",
        json.dumps({"aws_endpoint_url": endpoint, **extra}),
    ]
    if limit:
        cmd += ["--limit", limit]
    if tags:
        cmd += ["--tags", tags]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
        AWS_URL=endpoint,  # the aws_ec2 inventory plugin of the inventory reads it
    )
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - start
    try:
        report = json.loads(proc.stdout[proc.stdout.index("{") :])
    except ValueError:
        pytest.fail(f"ansible-playbook printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    tasks: dict[str, list[dict]] = {}
    failures = []
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            result = task["hosts"].get("localhost", {})
            tasks.setdefault(task["task"]["name"], []).append(result)
            if result.get("failed"):
                messages = [r.get("msg") for r in result.get("results", []) if r.get("failed")] or [result.get("msg")]
                failures.extend(f"{task['task']['name']}: {message}" for message in messages)
    stats = report.get("stats", {}).get("localhost", {})
    return Run(proc.returncode, stats.get("changed", -1), failures, tasks, seconds, proc.stdout + proc.stderr)


def vpcs(aws: Callable, name: str) -> list[dict]:
    return aws("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"aws_network_vpc_cidr": "10.0.0.0/33"}, "aws_network_vpc_cidr"),
        ({"aws_network_admin_cidrs": ["203.0.113.300/24"]}, "aws_network_admin_cidrs"),
        ({"aws_iam_artifact_bucket": "Not_A_Bucket"}, "aws_iam_artifact_bucket"),
        ({"ec2_autoscaling_min_size": 5, "ec2_autoscaling_max_size": 3}, "ec2_autoscaling_min_size"),
        (
            {"ec2_autoscaling_certificate_arn": "arn:aws:iam::123456789012:server-certificate/x"},
            "ec2_autoscaling_certificate_arn",
        ),
        ({"ec2_autoscaling_environment": "qa"}, "ec2_autoscaling_environment"),
        ({"ec2_autoscaling_name": "a-name-that-is-far-too-long-for-an-alb"}, "ec2_autoscaling_name"),
    ],
)
def test_bad_input_fails_before_any_change(aws_server: str, aws: Callable, base_vars: dict, bad: dict, named: str):
    run = run_playbook(aws_server, "provision_aws", "dev", {**base_vars, **bad})
    assert run.rc != 0
    assert run.changed == 0
    assert any(named in failure for failure in run.failures), run.failures or run.output[-3000:]
    assert vpcs(aws, "webstack-dev") == []


@pytest.fixture(scope="module")
def converged(aws_server: str, aws: Callable, base_vars: dict) -> dict[str, Run]:
    """check (fresh account) -> apply -> apply -> check, with the prod inventory."""
    runs = {}
    runs["check_fresh"] = run_playbook(aws_server, "provision_aws", "prod", base_vars, check=True)
    runs["vpcs_after_check"] = vpcs(aws, NAME)
    for step, check in (("apply", False), ("apply_again", False), ("check_again", True)):
        runs[step] = run_playbook(aws_server, "provision_aws", "prod", base_vars, check=check)
        print(f"provision_aws {step}: {runs[step].seconds:.1f} s, changed={runs[step].changed}")
    return runs


def test_check_mode_on_a_fresh_account_completes_and_changes_nothing(converged: dict):
    run = converged["check_fresh"]
    assert run.rc == 0, run.failures or run.output[-3000:]
    assert run.changed > 0  # it reports what it would create
    assert converged["vpcs_after_check"] == []


def test_apply_creates_then_converges(converged: dict):
    first, second = converged["apply"], converged["apply_again"]
    assert first.rc == 0, first.failures or first.output[-3000:]
    assert first.changed > 10
    assert second.rc == 0, second.failures
    changed = [name for name, results in second.tasks.items() for r in results if r.get("changed")]
    assert second.changed == 0, changed


def test_check_mode_after_apply_reports_no_change(converged: dict):
    run = converged["check_again"]
    assert run.rc == 0, run.failures or run.output[-3000:]
    changed = [name for name, results in run.tasks.items() for r in results if r.get("changed")]
    assert run.changed == 0, changed


def test_role_records_what_the_release_path_needs(converged: dict, aws: Callable):
    facts = task(converged["apply_again"], "Show what the release path uses")[0]["msg"]
    listener = aws("elbv2").describe_listeners(ListenerArns=[facts["https_listener_arn"]])["Listeners"][0]
    assert listener["Port"] == 443
    assert facts["active_colour"] == "blue"
    assert facts["asg_names"] == {"blue": f"{NAME}-blue", "green": f"{NAME}-green"}
    groups = aws("elbv2").describe_target_groups(TargetGroupArns=list(facts["target_group_arns"].values()))
    assert sorted(g["TargetGroupName"] for g in groups["TargetGroups"]) == [f"{NAME}-blue", f"{NAME}-green"]
    state = json.loads(aws("ssm").get_parameter(Name=f"/webstack/{NAME}/bluegreen")["Parameter"]["Value"])
    assert state["active_colour"] == "blue"
    assert state["active_target_group_arn"] == facts["target_group_arns"]["blue"]


def test_network_and_security_groups(converged: dict, aws: Callable):
    ec2 = aws("ec2")
    (vpc,) = vpcs(aws, NAME)
    assert vpc["CidrBlock"] == "10.30.0.0/16"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    tiers = {}
    for subnet in subnets:
        tier = {t["Key"]: t["Value"] for t in subnet["Tags"]}["Tier"]
        tiers.setdefault(tier, []).append(subnet)
    assert sorted(s["CidrBlock"] for s in tiers["public"]) == ["10.30.0.0/24", "10.30.1.0/24"]
    assert sorted(s["CidrBlock"] for s in tiers["private"]) == ["10.30.10.0/24", "10.30.11.0/24"]
    assert len({s["AvailabilityZone"] for s in tiers["private"]}) == 2
    groups = {
        g["GroupName"]: g
        for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["SecurityGroups"]
    }
    alb, instances = groups[f"{NAME}-alb"], groups[f"{NAME}-instances"]
    assert sorted((p["FromPort"], r["CidrIp"]) for p in alb["IpPermissions"] for r in p["IpRanges"]) == [
        (80, "0.0.0.0/0"),
        (443, "0.0.0.0/0"),
    ]
    # Instances: only the app port, only from the ALB's group; no SSH in prod (no admin CIDRs).
    assert [(p["FromPort"], p["ToPort"]) for p in instances["IpPermissions"]] == [(443, 443)]
    assert [g["GroupId"] for g in instances["IpPermissions"][0]["UserIdGroupPairs"]] == [alb["GroupId"]]
    assert instances["IpPermissions"][0]["IpRanges"] == []


def test_instance_role_and_launch_template(converged: dict, aws: Callable):
    iam = aws("iam")
    attached = iam.list_attached_role_policies(RoleName=f"{NAME}-instance")["AttachedPolicies"]
    assert sorted(p["PolicyName"] for p in attached) == [
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonSSMManagedInstanceCore",
        "CloudWatchAgentServerPolicy",
    ]
    profile = iam.get_instance_profile(InstanceProfileName=f"{NAME}-instance")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [f"{NAME}-instance"]
    (version,) = aws("ec2").describe_launch_template_versions(LaunchTemplateName=NAME)["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    assert data["InstanceType"] == "t3.medium"
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
    assert data["IamInstanceProfile"]["Arn"] == profile["Arn"]
    import base64

    user_data = base64.b64decode(data["UserData"]).decode()
    assert "meta-data/tags/instance/${key}" in user_data  # each app's version: the tags AppVersion:<app>
    assert "AppVersion:" in user_data
    assert "mem_used_percent" in user_data


def test_auto_scaling_groups_and_target_tracking(converged: dict, aws: Callable):
    asg = aws("autoscaling")
    groups = {
        g["AutoScalingGroupName"]: g
        for g in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{NAME}-blue", f"{NAME}-green"])[
            "AutoScalingGroups"
        ]
    }
    blue, green = groups[f"{NAME}-blue"], groups[f"{NAME}-green"]
    assert (blue["MinSize"], blue["MaxSize"], blue["DesiredCapacity"]) == (2, 10, 2)  # EEC-NIF: prod 2..10
    assert (green["MinSize"], green["DesiredCapacity"]) == (0, 0)  # idle colour
    assert blue["HealthCheckType"] == "ELB"
    assert len(blue["Instances"]) == 2
    tgs = aws("elbv2").describe_target_groups(Names=[f"{NAME}-blue"])["TargetGroups"]
    assert blue["TargetGroupARNs"] == [tgs[0]["TargetGroupArn"]]
    assert blue["LaunchTemplate"]["Version"] == "$Latest"
    policies = asg.describe_policies(AutoScalingGroupName=f"{NAME}-blue")["ScalingPolicies"]
    (policy,) = [p for p in policies if p["PolicyType"] == "TargetTrackingScaling"]
    config = policy["TargetTrackingConfiguration"]
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ASGAverageCPUUtilization"
    assert config["TargetValue"] == 60.0


def test_target_groups_and_listeners(converged: dict, aws: Callable, base_vars: dict):
    elb = aws("elbv2")
    tgs = {
        g["TargetGroupName"]: g
        for g in elb.describe_target_groups(Names=[f"{NAME}-blue", f"{NAME}-green"])["TargetGroups"]
    }
    for group in tgs.values():
        assert group["HealthCheckPath"] == "/health"
        assert group["HealthCheckIntervalSeconds"] == 5
        assert group["HealthyThresholdCount"] == 2
        assert group["Port"] == 443
        assert group["Protocol"] == "HTTPS"
        attributes = {
            a["Key"]: a["Value"]
            for a in elb.describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])["Attributes"]
        }
        assert attributes["deregistration_delay.timeout_seconds"] == "15"
    (alb,) = elb.describe_load_balancers(Names=[NAME])["LoadBalancers"]
    listeners = {
        listener["Port"]: listener
        for listener in elb.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"]
    }
    assert sorted(listeners) == [80, 443]
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["Port"] == "443"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["Certificates"][0]["CertificateArn"] == base_vars["ec2_autoscaling_certificate_arn"]
    assert https["DefaultActions"][0]["TargetGroupArn"] == tgs[f"{NAME}-blue"]["TargetGroupArn"]
    rules = [r for r in elb.describe_rules(ListenerArn=https["ListenerArn"])["Rules"] if not r["IsDefault"]]
    by_colour = {r["Conditions"][0]["HttpHeaderConfig"]["Values"][0]: r["Actions"][0]["TargetGroupArn"] for r in rules}
    assert by_colour == {c: tgs[f"{NAME}-{c}"]["TargetGroupArn"] for c in ("blue", "green")}


def test_alarms_and_topic(converged: dict, aws: Callable):
    cw = aws("cloudwatch")
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix=NAME)["MetricAlarms"]}
    topic = [t["TopicArn"] for t in aws("sns").list_topics()["Topics"] if t["TopicArn"].endswith(f":{NAME}-alarms")]
    assert len(topic) == 1
    subscriptions = aws("sns").list_subscriptions_by_topic(TopicArn=topic[0])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", ALARM_EMAIL)]

    cpu = alarms[f"{NAME}-blue-cpu-high"]
    assert (cpu["Namespace"], cpu["MetricName"], cpu["Threshold"]) == ("AWS/EC2", "CPUUtilization", 80.0)
    assert cpu["ComparisonOperator"] == "GreaterThanThreshold"
    assert cpu["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": f"{NAME}-blue"}]
    assert cpu["AlarmActions"] == topic
    memory = alarms[f"{NAME}-green-memory-high"]
    assert (memory["Namespace"], memory["MetricName"], memory["Threshold"]) == ("CWAgent", "mem_used_percent", 90.0)
    for node in ("webstack-prod-redis-001", "webstack-prod-redis-002"):
        redis = alarms[f"{NAME}-redis-{node}-memory-high"]
        assert (redis["Namespace"], redis["MetricName"]) == ("AWS/ElastiCache", "DatabaseMemoryUsagePercentage")
        assert redis["Threshold"] == 75.0
        assert redis["Dimensions"] == [{"Name": "CacheClusterId", "Value": node}]
    rate = alarms[f"{NAME}-alb-5xx-rate"]
    assert rate["Threshold"] == 1.0
    queries = {m["Id"]: m for m in rate["Metrics"]}
    assert queries["rate"]["Expression"] == "100 * FILL(errors, 0) / requests"
    assert queries["errors"]["MetricStat"]["Metric"]["MetricName"] == "HTTPCode_Target_5XX_Count"
    assert queries["requests"]["MetricStat"]["Metric"]["MetricName"] == "RequestCount"
    (alb,) = aws("elbv2").describe_load_balancers(Names=[NAME])["LoadBalancers"]
    dimension = queries["errors"]["MetricStat"]["Metric"]["Dimensions"][0]
    assert dimension == {"Name": "LoadBalancer", "Value": alb["LoadBalancerArn"].split(":loadbalancer/")[1]}


def test_instances_read_the_artifact_they_boot_from(converged: dict, aws: Callable):
    """aws.yml built this checkout into the boot bucket; the instance role may read that bucket, nothing more."""
    import io
    import tarfile

    bucket = f"webstack-prod-artifacts-{ACCOUNT}"
    statements = aws("iam").get_role_policy(RoleName=f"{NAME}-instance", PolicyName="read-artifact-bucket")[
        "PolicyDocument"
    ]["Statement"]
    granted = {(action, statement["Resource"]) for statement in statements for action in statement["Action"]}
    assert granted == {
        ("s3:ListBucket", f"arn:aws:s3:::{bucket}"),
        ("s3:GetBucketLocation", f"arn:aws:s3:::{bucket}"),
        ("s3:GetObject", f"arn:aws:s3:::{bucket}/*"),
    }
    body = aws("s3").get_object(Bucket=bucket, Key="webstack-deploy.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as artifact:
        manifest = json.load(artifact.extractfile("MANIFEST.json"))
        names = artifact.getnames()
    assert (manifest["collection_info"]["namespace"], manifest["collection_info"]["name"]) == ("webstack", "deploy")
    assert "roles/ec2_autoscaling/templates/user_data.sh.j2" in names
    assert "site.yml" in names
    # The controller's CAs and caches (.pki/, inventories/<env>/.cache/, test caches) stay out of it:
    # no private key ever travels to the bucket.
    assert [n for n in names if n.endswith(".key") or "/.cache/" in f"/{n}" or n.startswith((".pki", ".pytest"))] == []
    # The second apply found the same artifact (times fixed when packed) and left it alone.
    uploads = [r for r in task(converged["apply_again"], "Upload the artifact to the boot bucket") if r.get("changed")]
    assert uploads == []
