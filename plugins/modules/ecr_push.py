#!/usr/bin/python
# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecr_push
short_description: Push a local Docker image to an Amazon ECR repository, only when the tags do not hold it yet
version_added: 0.1.0
description:
  - Pushes a local image of a Docker engine to an Amazon Elastic Container Registry (ECR) repository under one
    or more tags, creating the repository and setting its tag immutability, scan on push and image retention
    when asked.
  - Authenticates with a token from the ECR API (C(ecr:GetAuthorizationToken)) and logs the Docker engine in
    with it, as C(aws ecr get-login-password | docker login) would.
  - Idempotent by content. A tag counts as already pushed when the manifest it holds in the registry describes
    the local image (its config digest is the local image ID), or when its manifest digest is one the engine
    recorded for the local image at an earlier push. Such tags are not pushed again; when all tags hold the
    image, nothing changes. This holds across machines, where the same image pushed twice may be compressed
    into different layer blobs.
  - What the tags hold is read from the ECR API (C(ecr:BatchGetImage)), or, when O(registry_url) is set, from
    the Registry HTTP API V2 of that endpoint (C(GET /v2/<repository>/manifests/<tag>), whose
    C(Docker-Content-Digest) header names the manifest digest).
  - Refuses to move a tag of a repository with immutable tags, before anything is pushed.
options:
  repository:
    description:
      - Name of the ECR repository, for example V(webstack/app).
    type: str
    required: true
    aliases: [name]
  source:
    description:
      - The local image to push, as a name with optional tag (V(webstack/app:build-42)) or an image ID.
      - It must exist in the engine O(docker_host) points at; the module neither builds nor pulls it.
    type: str
    required: true
  tags:
    description:
      - Tags the image gets in the repository. Each is pushed only if it does not hold the image yet.
      - The first tag names RV(image_uri).
    type: list
    elements: str
    default: [latest]
  create_repository:
    description:
      - Create the repository when it does not exist.
      - With V(false), a missing repository fails the task before anything is changed.
    type: bool
    default: true
  tag_immutability:
    description:
      - Whether tags of the repository are immutable. Unset keeps the repository's setting (mutable for a new one).
      - The immutability check against tags that would move uses this requested value.
    type: bool
  scan_on_push:
    description:
      - Whether ECR scans each pushed image for vulnerabilities. Unset keeps the repository's setting
        (off for a new one).
    type: bool
  lifecycle_retain:
    description:
      - Keep only the N most recently pushed images, through a lifecycle policy that expires the others
        (tagged or not). The policy replaces any lifecycle policy of the repository.
      - Unset leaves the repository's lifecycle policy alone.
    type: int
  registry_url:
    description:
      - Endpoint of the registry to log in to and push to, instead of the ECR endpoint that the authorization
        token names. For interface VPC endpoints with private DNS names, registry mirrors in front of ECR, and tests.
      - Given as V(https://host[:port]) or V(http://host[:port]); without a scheme, HTTPS. The C(host[:port]) part
        prefixes the image names (RV(repository_uri)).
      - The credentials still come from the ECR API of the configured account and region.
    type: str
  docker_host:
    description:
      - Docker engine that holds O(source) and does the push.
      - Falls back to the E(DOCKER_HOST) environment variable.
    type: str
    default: unix:///var/run/docker.sock
  docker_timeout:
    description:
      - Seconds to wait for an answer of the Docker engine to one request (a push streams and is not bounded by it).
    type: int
    default: 120
notes:
  - The module runs where the Docker engine is reachable (usually C(localhost) or a build host) and needs
    the Docker SDK for Python there.
  - IAM permissions used are C(ecr:GetAuthorizationToken), C(ecr:DescribeRepositories), C(ecr:BatchGetImage),
    C(ecr:GetLifecyclePolicy), the layer upload actions a push needs (C(ecr:InitiateLayerUpload),
    C(ecr:UploadLayerPart), C(ecr:CompleteLayerUpload), C(ecr:BatchCheckLayerAvailability), C(ecr:PutImage)),
    and, when settings change, C(ecr:CreateRepository), C(ecr:PutImageTagMutability),
    C(ecr:PutImageScanningConfiguration) and C(ecr:PutLifecyclePolicy).
  - In check mode the module reads the repository and the tags, and logs the engine in when a push would
    follow (to validate the credentials), but creates, changes, tags and pushes nothing. RV(digest) is then
    the digest the tags hold, or, for a push still to come, the digest the engine recorded for this image in
    this repository if there is exactly one, and null otherwise.
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows each tag with the manifest digest it holds before and after, and the repository settings.
  idempotent:
    support: full
requirements:
  - docker (the Docker SDK for Python) >= 7.0
author:
  - webstack.deploy maintainers (@webstack)
seealso:
  - module: community.aws.ecs_ecr
    description: Manages ECR repositories and their policies in full.
  - module: community.docker.docker_image_push
    description: Pushes images to registries with credentials managed by community.docker.docker_login.
  - module: webstack.deploy.target_group_swap
extends_documentation_fragment:
  - webstack.deploy.attributes
  - webstack.deploy.attributes.aws
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Push the release image under its version and latest
  webstack.deploy.ecr_push:
    repository: webstack/app
    source: webstack/app:build-{{ build_number }}
    tags:
      - "{{ app_version }}"
      - latest
    tag_immutability: false
    scan_on_push: true
    lifecycle_retain: 30
  register: pushed

- name: Deploy exactly what was pushed
  ansible.builtin.debug:
    msg: "{{ pushed.repository_uri }}@{{ pushed.digest }}"

- name: Release tags that never move (pushing another image under 1.4.0 fails the task)
  webstack.deploy.ecr_push:
    repository: webstack/app
    source: webstack/app:build-{{ build_number }}
    tags: ["1.4.0"]
    tag_immutability: true

- name: Push through an interface VPC endpoint, connection settings shared by the aws group
  module_defaults:
    group/webstack.deploy.aws:
      region: eu-west-1
  webstack.deploy.ecr_push:
    repository: webstack/app
    source: "{{ image_id }}"
    tags: ["{{ app_version }}"]
    registry_url: https://123456789012.dkr.ecr.eu-west-1.amazonaws.com
    docker_host: tcp://build-host:2376
"""

RETURN = r"""
repository_uri:
  description: Image name of the repository, C(<registry host>/<repository>).
  returned: always
  type: str
  sample: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/webstack/app
image_uri:
  description: The image under the first of O(tags).
  returned: always
  type: str
  sample: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/webstack/app:1.4.0
digest:
  description:
    - Manifest digest the first tag holds after the task; C(<repository_uri>@<digest>) names the image for good.
    - In check mode, null when it cannot be known before pushing.
  returned: always
  type: str
  sample: sha256:4bc453b53cb3d914b45f4b250294236adba2c0e09ff6f03793949e7e39fd4cc1
image_id:
  description: ID (config digest) of the local image.
  returned: always
  type: str
  sample: sha256:9a0b5d1b6f0c1a5c86a0e5d3f1e0f2f7c2a0d4f44b5f4b6e4d2fb7f2e3f0a1b2
pushed:
  description: Whether the module pushed (in check mode, would push) at least one tag.
  returned: always
  type: bool
  sample: true
pushed_tags:
  description: The tags pushed (in check mode, that would be pushed).
  returned: always
  type: list
  elements: str
  sample: ["1.4.0"]
tags:
  description: Per tag, what it held before, what it holds after and what the module did.
  returned: always
  type: dict
  sample:
    "1.4.0":
      action: create
      before: null
      after: sha256:4bc453b53cb3d914b45f4b250294236adba2c0e09ff6f03793949e7e39fd4cc1
    latest:
      action: unchanged
      before: sha256:4bc453b53cb3d914b45f4b250294236adba2c0e09ff6f03793949e7e39fd4cc1
      after: sha256:4bc453b53cb3d914b45f4b250294236adba2c0e09ff6f03793949e7e39fd4cc1
repository:
  description: The repository settings the module manages, after the task, and the API calls it made.
  returned: always
  type: dict
  contains:
    exists:
      description: Whether the repository exists (in check mode, would exist).
      type: bool
    tag_immutability:
      description: Whether its tags are immutable.
      type: bool
    scan_on_push:
      description: Whether pushed images are scanned.
      type: bool
    lifecycle_retain:
      description: Number of images the lifecycle policy keeps, null without a policy of that shape.
      type: int
    changes:
      description: ECR API operations made (in check mode, that would be made) on the repository.
      type: list
      elements: str
  sample:
    exists: true
    tag_immutability: false
    scan_on_push: true
    lifecycle_retain: 30
    changes: [create_repository]
registry:
  description: C(host[:port]) the engine logged in and pushed to.
  returned: always
  type: str
  sample: 123456789012.dkr.ecr.eu-west-1.amazonaws.com
"""

import traceback

try:
    import docker
    from docker.errors import APIError, DockerException, ImageNotFound, NotFound

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible.module_utils.urls import open_url
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.webstack.deploy.plugins.module_utils.ecr import RepositoryState, plan_repository
from ansible_collections.webstack.deploy.plugins.module_utils.registry import (
    EcrTagReader,
    LocalImage,
    RegistryAuthError,
    RegistryError,
    RegistryV2TagReader,
    decode_authorization_token,
    immutable_violations,
    parse_push_events,
    parse_registry_url,
    plan_tags,
    predicted_digest,
    registry_host_from_endpoint,
    validate_options,
)

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    BotoCoreError = ClientError = Exception  # Handled by AnsibleAWSModule


def _short(digest):
    return digest[:19] if digest else digest


class EcrPush:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = self.params["repository"]
        self.ecr = module.client("ecr", retry_decorator=AWSRetry.jittered_backoff(retries=10))

    # -- AWS side ---------------------------------------------------------------------------
    def describe_repository(self):
        try:
            result = self.ecr.describe_repositories(repositoryNames=[self.name], aws_retry=True)
        except is_boto3_error_code("RepositoryNotFoundException"):
            return None
        except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Could not describe ECR repository {self.name}")
        return result["repositories"][0]

    def lifecycle_policy_text(self):
        try:
            return self.ecr.get_lifecycle_policy(repositoryName=self.name, aws_retry=True)["lifecyclePolicyText"]
        except is_boto3_error_code("LifecyclePolicyNotFoundException"):
            return None
        except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Could not read the lifecycle policy of ECR repository {self.name}")

    def credentials(self):
        try:
            data = self.ecr.get_authorization_token(aws_retry=True)["authorizationData"][0]
        except (BotoCoreError, ClientError) as e:
            self.module.fail_json_aws(
                e, msg="Could not get a registry authorization token from ECR (ecr:GetAuthorizationToken)"
            )
        try:
            user, password = decode_authorization_token(data["authorizationToken"])
        except ValueError as e:
            self.module.fail_json(msg=str(e))
        return user, password, data["proxyEndpoint"]

    def apply_repository_change(self, change):
        try:
            getattr(self.ecr, change.operation)(aws_retry=True, **change.params)
        except (BotoCoreError, ClientError) as e:
            self.module.fail_json_aws(e, msg=f"Could not {change.operation} on ECR repository {self.name}")

    # -- Docker side ------------------------------------------------------------------------
    def docker_client(self):
        host = self.params["docker_host"]
        try:
            client = docker.DockerClient(base_url=host, version="auto", timeout=self.params["docker_timeout"])
            client.ping()
        except DockerException as e:
            self.module.fail_json(
                msg=f"Could not reach the Docker engine at {host} ({e}). Expected a running engine there; "
                "set docker_host (or DOCKER_HOST) to the engine that holds the image.",
                exception=traceback.format_exc(),
            )
        return client

    def local_image(self, client):
        source = self.params["source"]
        try:
            image = client.images.get(source)
        except (ImageNotFound, NotFound):
            self.module.fail_json(
                msg=f"Local image {source!r} was not found in the Docker engine at {self.params['docker_host']}. "
                "Expected an image name[:tag] or ID that 'docker image ls' lists on that engine; build or pull "
                "it before this task, or point docker_host at the engine that has it."
            )
        except APIError as e:
            self.module.fail_json(msg=f"The Docker engine could not inspect image {source!r}: {e}")
        return image, LocalImage(image.id, list(image.attrs.get("RepoDigests") or []), image.attrs.get("Size"))

    def login(self, client, registry, user, password, registry_url):
        try:
            client.login(username=user, password=password, registry=registry, reauth=True)
        except APIError as e:
            # The engine answers 500 with "login attempt to ... failed with status: 401 Unauthorized".
            text = str(getattr(e, "explanation", None) or e)
            if getattr(e, "status_code", None) == 401 or "401" in text or "unauthorized" in text.lower():
                self.fail_refused(registry, registry_url, text)
            self.module.fail_json(msg=f"Docker could not log in to the registry {registry}: {text}")

    def fail_refused(self, registry, registry_url, detail):
        where = (
            f"registry_url ({registry_url}) must be a registry of the same AWS account and region as the "
            f"credentials (region {self.module.region})"
            if registry_url
            else "it is the registry ECR named for these credentials, so the token itself was refused"
        )
        self.module.fail_json(
            msg=f"The registry {registry} refused the credentials from ECR get_authorization_token (HTTP 401): "
            f"{detail}. Expected it to accept user AWS with the ECR token; {where}. Check the AWS credentials, "
            "profile and region, and that the IAM principal may push to the repository."
        )

    def push(self, client, image, repository_uri, tag, user, password):
        try:
            image.tag(repository_uri, tag=tag)
            events = client.images.push(
                repository_uri,
                tag=tag,
                auth_config={"username": user, "password": password},
                stream=True,
                decode=True,
            )
            return parse_push_events(events)
        except RegistryError as e:
            text = str(e)
            if "unauthorized" in text.lower() or "authentication required" in text.lower():
                self.fail_refused(repository_uri.split("/", 1)[0], self.params["registry_url"], text)
            if "immutable" in text.lower():
                self.module.fail_json(
                    msg=f"The registry refused to move the immutable tag {tag} of {repository_uri}: {text}. "
                    "Push under a new tag or set tag_immutability: false."
                )
            self.module.fail_json(msg=f"Pushing {repository_uri}:{tag} failed: {text}")
        except DockerException as e:
            self.module.fail_json(msg=f"Pushing {repository_uri}:{tag} failed: {e}", exception=traceback.format_exc())

    # -- the task ---------------------------------------------------------------------------
    def run(self):
        p = self.params
        errors = validate_options(self.name, p["tags"], p["lifecycle_retain"])
        registry_base = registry = None
        if p["registry_url"]:
            try:
                registry_base, registry = parse_registry_url(p["registry_url"])
            except ValueError as e:
                errors.append(str(e))
        if errors:
            self.module.fail_json(msg="Invalid options: " + "; ".join(errors))

        client = self.docker_client()
        image, local = self.local_image(client)

        repo = self.describe_repository()
        if repo is None and not p["create_repository"]:
            self.module.fail_json(
                msg=f"ECR repository {self.name!r} does not exist in region {self.module.region} and "
                "create_repository is false. Create it first, or set create_repository: true."
            )
        current = RepositoryState.from_api(repo, self.lifecycle_policy_text() if repo else None)
        changes, after_repo = plan_repository(
            self.name, current, p["tag_immutability"], p["scan_on_push"], p["lifecycle_retain"]
        )

        user, password, proxy_endpoint = self.credentials()
        if registry is None:
            registry = registry_host_from_endpoint(proxy_endpoint)
        repository_uri = f"{registry}/{self.name}"

        try:
            if p["registry_url"]:
                reader = RegistryV2TagReader(registry_base, user, password, open_url, p["validate_certs"])
                remote = reader.lookup(self.name, p["tags"])
            elif repo is None:
                remote = {}
            else:
                remote = EcrTagReader(self.ecr).lookup(self.name, p["tags"])
        except RegistryAuthError as e:
            self.fail_refused(registry, p["registry_url"], str(e))
        except RegistryError as e:
            self.module.fail_json(msg=str(e))
        except (BotoCoreError, ClientError) as e:
            self.module.fail_json_aws(e, msg=f"Could not read the tags of ECR repository {self.name}")

        plans = plan_tags(p["tags"], local, remote, repository_uri)
        moving = immutable_violations(plans, bool(after_repo.tag_immutability))
        if moving:
            held = ", ".join(
                f"{t.tag} holds image {_short(t.before_image) or 'of another format'} (manifest {_short(t.before)})"
                for t in moving
            )
            self.module.fail_json(
                msg=f"ECR repository {self.name!r} has immutable tags, and pushing {p['source']!r} "
                f"(image {_short(local.id)}) would move them: {held}. Nothing was changed. Push under a new tag "
                "(such as the build's version), or set tag_immutability: false if moving tags is intended.",
                tags={t.tag: {"before": t.before, "before_image": t.before_image} for t in moving},
                image_id=local.id,
            )

        to_push = [t for t in plans if t.needs_push]
        after_digests = {t.tag: predicted_digest(t, local, repository_uri) for t in plans}
        if to_push:
            # Also in check mode: a login changes nothing and tells whether the push would be accepted.
            self.login(client, registry, user, password, p["registry_url"])
        if not self.module.check_mode:
            for change in changes:
                self.apply_repository_change(change)
            for t in to_push:
                after_digests[t.tag] = self.push(client, image, repository_uri, t.tag, user, password)
            missing = [t.tag for t in to_push if not after_digests[t.tag]]
            if missing:
                # The engine reported no digest: read what the tags hold now.
                if p["registry_url"]:
                    check = RegistryV2TagReader(registry_base, user, password, open_url, p["validate_certs"])
                else:
                    check = EcrTagReader(self.ecr)
                for tag, held in check.lookup(self.name, missing).items():
                    after_digests[tag] = held.digest

        first = p["tags"][0]
        result = dict(
            changed=bool(changes or to_push),
            repository_uri=repository_uri,
            image_uri=f"{repository_uri}:{first}",
            digest=after_digests[first],
            image_id=local.id,
            pushed=bool(to_push),
            pushed_tags=[t.tag for t in to_push],
            tags={t.tag: {"action": t.action, "before": t.before, "after": after_digests[t.tag]} for t in plans},
            repository=dict(after_repo.summary(), changes=[c.operation for c in changes]),
            registry=registry,
        )
        if self.module._diff:
            pending = f"new manifest of image {local.id}"
            result["diff"] = {
                "before": {"repository": current.summary(), "tags": {t.tag: t.before for t in plans}},
                "after": {
                    "repository": after_repo.summary(),
                    "tags": {t.tag: after_digests[t.tag] or pending for t in plans},
                },
            }
        self.module.exit_json(**result)


def main():
    argument_spec = dict(
        repository=dict(type="str", required=True, aliases=["name"]),
        source=dict(type="str", required=True),
        tags=dict(type="list", elements="str", default=["latest"]),
        create_repository=dict(type="bool", default=True),
        tag_immutability=dict(type="bool"),
        scan_on_push=dict(type="bool"),
        lifecycle_retain=dict(type="int"),
        registry_url=dict(type="str"),
        docker_host=dict(type="str", default="unix:///var/run/docker.sock", fallback=(env_fallback, ["DOCKER_HOST"])),
        docker_timeout=dict(type="int", default=120),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"), exception=DOCKER_IMPORT_ERROR)
    EcrPush(module).run()


if __name__ == "__main__":
    main()
