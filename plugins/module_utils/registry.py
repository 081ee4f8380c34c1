# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry-side decisions of webstack.deploy.ecr_push.

Everything here is free of Ansible and of the Docker SDK so the decisions can be unit tested:

* which tags already hold the local image (``plan_tags``), compared by content: a tag is
  current when the manifest it holds describes the local image (the manifest's config digest
  is the local image ID) or when its manifest digest is one the engine already recorded for
  the local image (``RepoDigests``);
* where the registry is (``parse_registry_url``, ``registry_host_from_endpoint``) and which
  credentials the ECR token carries (``decode_authorization_token``);
* what a tag holds in the registry, read either from the ECR API (``EcrTagReader``, used for
  real ECR) or from the Registry HTTP API V2 (``RegistryV2TagReader``, used when
  ``registry_url`` overrides the endpoint: a VPC endpoint, a pull-through mirror, tests).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlparse

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST_V2 = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPTED_MEDIA_TYPES = (MANIFEST_V2, OCI_MANIFEST, MANIFEST_LIST_V2, OCI_INDEX)
INDEX_MEDIA_TYPES = (MANIFEST_LIST_V2, OCI_INDEX)

# Docker's reference grammar for a tag, and ECR's for a repository name.
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")

UNCHANGED = "unchanged"
CREATE = "create"
MOVE = "move"


class RegistryError(Exception):
    """The registry answered something the module cannot work with."""


class RegistryAuthError(RegistryError):
    """The registry refused the credentials (HTTP 401/403)."""


@dataclass(frozen=True)
class RemoteTag:
    """What one tag holds in the registry; ``digest`` is None when the tag does not exist."""

    tag: str
    digest: str | None = None
    config_digest: str | None = None
    media_type: str | None = None

    @property
    def exists(self) -> bool:
        return self.digest is not None


@dataclass(frozen=True)
class TagPlan:
    tag: str
    action: str  # UNCHANGED, CREATE or MOVE
    before: str | None  # manifest digest the tag holds now
    before_image: str | None = None  # image ID (config digest) the tag holds now

    @property
    def needs_push(self) -> bool:
        return self.action != UNCHANGED


@dataclass
class LocalImage:
    """The local image as the Docker engine describes it."""

    id: str
    repo_digests: list[str] = field(default_factory=list)
    size: int | None = None


def validate_options(repository: str, tags: Iterable[str], lifecycle_retain: int | None) -> list[str]:
    """Return one message per invalid option (empty when all are valid)."""
    errors = []
    if not REPOSITORY_RE.match(repository or "") or len(repository) > 256:
        errors.append(
            f"repository: expected an ECR repository name (lowercase letters, digits, '._-' separators, "
            f"'/' for namespaces, at most 256 characters), got {repository!r}"
        )
    tags = list(tags or [])
    if not tags:
        errors.append("tags: expected at least one tag, got an empty list")
    for tag in tags:
        if not TAG_RE.match(tag or ""):
            errors.append(
                f"tags: {tag!r} is not a valid tag (expected 1-128 characters of letters, digits, '_', '.', '-', "
                "not starting with '.' or '-')"
            )
    if len(set(tags)) != len(tags):
        errors.append(f"tags: each tag must appear once, got {tags}")
    if lifecycle_retain is not None and not 1 <= lifecycle_retain <= 10000:
        errors.append(f"lifecycle_retain: expected a number of images between 1 and 10000, got {lifecycle_retain}")
    return errors


def parse_registry_url(url: str) -> tuple[str, str]:
    """Split ``registry_url`` into (base URL for API calls, host[:port] for image names).

    A URL without a scheme is HTTPS, as the Docker engine assumes for anything but insecure
    registries.
    """
    text = (url or "").strip()
    if not text:
        raise ValueError("registry_url: expected a URL such as https://registry.example:443, got an empty value")
    if "://" not in text:
        text = "https://" + text
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"registry_url: expected http(s)://host[:port], got {url!r}")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ValueError(
            f"registry_url: expected only scheme, host and port (the repository comes from 'repository'), got {url!r}"
        )
    if "@" in parsed.netloc:
        raise ValueError("registry_url: credentials do not belong in the URL; they come from the ECR token")
    return f"{parsed.scheme}://{parsed.netloc}", parsed.netloc


def registry_host_from_endpoint(proxy_endpoint: str) -> str:
    """Host of the registry named by ECR's ``proxyEndpoint`` (``https://<acct>.dkr.ecr.<region>.amazonaws.com``)."""
    return parse_registry_url(proxy_endpoint)[1]


def decode_authorization_token(token: str) -> tuple[str, str]:
    """ECR's ``authorizationToken`` is base64 of ``user:password`` (the user is ``AWS``)."""
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"ECR returned an authorization token that is not base64 of user:password ({exc})") from exc
    user, sep, password = decoded.partition(":")
    if not sep or not user or not password:
        raise ValueError("ECR returned an authorization token that is not of the form user:password")
    return user, password


def config_digest_of(manifest: str | bytes | Mapping[str, Any] | None, media_type: str | None = None) -> str | None:
    """Config digest (the image ID) a single-image manifest points at; None for indexes and unknown formats."""
    if manifest is None:
        return None
    if isinstance(manifest, (str, bytes)):
        try:
            manifest = json.loads(manifest)
        except ValueError:
            return None
    if not isinstance(manifest, Mapping):
        return None
    kind = manifest.get("mediaType") or media_type
    if kind in INDEX_MEDIA_TYPES or "manifests" in manifest:
        return None
    config = manifest.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("digest"), str):
        return config["digest"]
    return None


def recorded_digests(repo_digests: Iterable[str], repository_uri: str) -> set[str]:
    """Manifest digests the engine recorded for this image in ``repository_uri`` (from earlier pushes/pulls)."""
    prefix = repository_uri + "@"
    return {ref[len(prefix) :] for ref in repo_digests or () if ref.startswith(prefix)}


def plan_tags(
    tags: Iterable[str], image: LocalImage, remote: Mapping[str, RemoteTag], repository_uri: str
) -> list[TagPlan]:
    """Decide, tag by tag, whether the registry already holds the local image."""
    known = recorded_digests(image.repo_digests, repository_uri)
    plans = []
    for tag in tags:
        held = remote.get(tag) or RemoteTag(tag)
        if not held.exists:
            plans.append(TagPlan(tag, CREATE, None))
        elif held.config_digest == image.id or held.digest in known:
            plans.append(TagPlan(tag, UNCHANGED, held.digest, held.config_digest))
        else:
            plans.append(TagPlan(tag, MOVE, held.digest, held.config_digest))
    return plans


def immutable_violations(plans: Iterable[TagPlan], immutable: bool) -> list[TagPlan]:
    """Tags that would move although the repository's tags are immutable."""
    return [p for p in plans if immutable and p.action == MOVE]


def predicted_digest(plan: TagPlan, image: LocalImage, repository_uri: str) -> str | None:
    """Digest the tag will hold after the push, as far as it can be known without pushing."""
    if not plan.needs_push:
        return plan.before
    known = sorted(recorded_digests(image.repo_digests, repository_uri))
    return known[0] if len(known) == 1 else None


def parse_push_events(events: Iterable[Mapping[str, Any]]) -> str | None:
    """Digest reported by a ``docker push`` event stream; raise RegistryError on an error event."""
    digest = None
    for event in events:
        if not isinstance(event, Mapping):
            continue
        if "errorDetail" in event or "error" in event:
            detail = event.get("errorDetail") or {}
            message = detail.get("message") if isinstance(detail, Mapping) else None
            raise RegistryError(message or str(event.get("error")))
        aux = event.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            digest = aux["Digest"]
    return digest


class EcrTagReader:
    """What tags hold, read through the ECR API (``batch_get_image``): the path for real ECR.

    ``client`` is a boto3 ECR client, preferably wrapped by AWSRetry (calls pass ``aws_retry``
    only when ``retry`` is true so plain clients work in tests).
    """

    def __init__(self, client: Any, registry_id: str | None = None, retry: bool = True):
        self.client = client
        self.registry_id = registry_id
        self.retry = retry

    def lookup(self, repository: str, tags: Iterable[str]) -> dict[str, RemoteTag]:
        tags = list(tags)
        found = {tag: RemoteTag(tag) for tag in tags}
        kwargs: dict[str, Any] = {
            "repositoryName": repository,
            "imageIds": [{"imageTag": t} for t in tags],
            "acceptedMediaTypes": list(ACCEPTED_MEDIA_TYPES),
        }
        if self.registry_id:
            kwargs["registryId"] = self.registry_id
        if self.retry:
            kwargs["aws_retry"] = True
        response = self.client.batch_get_image(**kwargs)
        for image in response.get("images", []):
            ident = image.get("imageId", {})
            tag = ident.get("imageTag")
            if tag in found:
                media = image.get("imageManifestMediaType")
                found[tag] = RemoteTag(
                    tag, ident.get("imageDigest"), config_digest_of(image.get("imageManifest"), media), media
                )
        for failure in response.get("failures", []):
            if failure.get("failureCode") not in ("ImageNotFound", "ImageTagDoesNotMatchDigest"):
                raise RegistryError(
                    f"ECR could not describe tag {failure.get('imageId', {}).get('imageTag')!r}: "
                    f"{failure.get('failureCode')}: {failure.get('failureReason')}"
                )
        return found


class RegistryV2TagReader:
    """What tags hold, read through the Registry HTTP API V2 (``GET /v2/<name>/manifests/<tag>``).

    The manifest digest comes from the ``Docker-Content-Digest`` header (or the SHA-256 of the
    body when a registry leaves it out), the image it describes from the manifest's config.
    ``opener`` is ``ansible.module_utils.urls.open_url`` in the module.
    """

    def __init__(
        self,
        base_url: str,
        username: str | None,
        password: str | None,
        opener: Callable[..., Any],
        validate_certs: bool = True,
        timeout: int = 30,
    ):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.opener = opener
        self.validate_certs = validate_certs
        self.timeout = timeout

    def _get(self, repository: str, tag: str) -> tuple[int, Mapping[str, str], bytes]:
        url = f"{self.base_url}/v2/{quote(repository, safe='/')}/manifests/{quote(tag, safe='')}"
        try:
            response = self.opener(
                url,
                method="GET",
                headers={"Accept": ", ".join(ACCEPTED_MEDIA_TYPES)},
                url_username=self.username,
                url_password=self.password,
                force_basic_auth=bool(self.username),
                validate_certs=self.validate_certs,
                timeout=self.timeout,
                follow_redirects="safe",
            )
        except Exception as exc:  # urllib's HTTPError carries code/headers/body; other errors are transport ones
            code = getattr(exc, "code", None)
            if code is None:
                raise RegistryError(f"could not reach the registry at {self.base_url}: {exc}") from exc
            body = b""
            with contextlib.suppress(Exception):  # the body only decorates the message
                body = exc.read() or b""  # type: ignore[attr-defined]
            return int(code), getattr(exc, "headers", {}) or {}, body
        return int(getattr(response, "status", 200)), response.headers, response.read()

    def lookup(self, repository: str, tags: Iterable[str]) -> dict[str, RemoteTag]:
        found = {}
        for tag in tags:
            code, headers, body = self._get(repository, tag)
            if code == 404:
                found[tag] = RemoteTag(tag)
            elif code in (401, 403):
                raise RegistryAuthError(
                    f"the registry at {self.base_url} refused the ECR credentials (HTTP {code}) when reading "
                    f"{repository}:{tag}: {body[:300].decode('utf-8', 'replace').strip()}"
                )
            elif code != 200:
                raise RegistryError(
                    f"the registry at {self.base_url} answered HTTP {code} for {repository}:{tag}: "
                    f"{body[:300].decode('utf-8', 'replace').strip()}"
                )
            else:
                digest = headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
                media = (headers.get("Content-Type") or "").split(";")[0].strip() or None
                found[tag] = RemoteTag(tag, digest, config_digest_of(body, media), media)
        return found
