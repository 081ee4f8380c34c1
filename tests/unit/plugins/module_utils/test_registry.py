"""Decisions of ecr_push on the registry side: digests, tags to push, credentials, endpoints."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import urllib.error

import pytest
from ansible_collections.webstack.deploy.plugins.module_utils.registry import (
    CREATE,
    MANIFEST_LIST_V2,
    MANIFEST_V2,
    MOVE,
    UNCHANGED,
    EcrTagReader,
    LocalImage,
    RegistryAuthError,
    RegistryError,
    RegistryV2TagReader,
    RemoteTag,
    TagPlan,
    config_digest_of,
    decode_authorization_token,
    immutable_violations,
    parse_push_events,
    parse_registry_url,
    plan_tags,
    predicted_digest,
    recorded_digests,
    registry_host_from_endpoint,
    validate_options,
)

IMAGE = "sha256:" + "a" * 64
OTHER_IMAGE = "sha256:" + "b" * 64
MANIFEST = "sha256:" + "1" * 64
OTHER_MANIFEST = "sha256:" + "2" * 64
URI = "127.0.0.1:5000/webstack/app"


def manifest(config: str) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config, "size": 1},
            "layers": [],
        }
    )


def test_validate_options():
    assert validate_options("webstack/app", ["1.0.0", "latest"], 10) == []
    errors = validate_options("Webstack/App", [], 0)
    assert len(errors) == 3
    assert "repository" in errors[0] and "tags" in errors[1] and "lifecycle_retain" in errors[2]
    assert "'-x' is not a valid tag" in validate_options("app", ["-x"], None)[0]
    assert "each tag must appear once" in validate_options("app", ["a", "a"], None)[0]


@pytest.mark.parametrize(
    ("url", "base", "host"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("https://vpce.example/", "https://vpce.example", "vpce.example"),
        ("registry.example:8443", "https://registry.example:8443", "registry.example:8443"),
    ],
)
def test_parse_registry_url(url, base, host):
    assert parse_registry_url(url) == (base, host)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("", "empty"),
        ("ftp://x", "http(s)"),
        ("https://x/v2/app", "only scheme, host and port"),
        ("https://user:pw@x", "credentials"),
    ],
)
def test_parse_registry_url_rejects(url, error):
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse_registry_url(url)


def test_registry_host_from_ecr_proxy_endpoint():
    assert (
        registry_host_from_endpoint("https://123456789012.dkr.ecr.eu-west-1.amazonaws.com")
        == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    )


def test_decode_authorization_token():
    token = base64.b64encode(b"AWS:secret:with:colons").decode()
    assert decode_authorization_token(token) == ("AWS", "secret:with:colons")
    with pytest.raises(ValueError, match="user:password"):
        decode_authorization_token(base64.b64encode(b"nocolon").decode())
    with pytest.raises(ValueError, match="base64"):
        decode_authorization_token("not base64!")


def test_config_digest_of():
    assert config_digest_of(manifest(IMAGE)) == IMAGE
    assert config_digest_of(json.loads(manifest(IMAGE))) == IMAGE
    assert config_digest_of(json.dumps({"mediaType": MANIFEST_LIST_V2, "manifests": []})) is None
    assert config_digest_of("{not json") is None
    assert config_digest_of(None) is None


def test_plan_tags_by_content_and_by_recorded_digest():
    image = LocalImage(IMAGE, repo_digests=[f"{URI}@{OTHER_MANIFEST}", f"elsewhere/app@{MANIFEST}"])
    remote = {
        "same-config": RemoteTag("same-config", MANIFEST, IMAGE, MANIFEST_V2),
        "recorded": RemoteTag("recorded", OTHER_MANIFEST, None, MANIFEST_LIST_V2),
        "other": RemoteTag("other", MANIFEST, OTHER_IMAGE, MANIFEST_V2),
        "absent": RemoteTag("absent"),
    }
    plans = plan_tags(["same-config", "recorded", "other", "absent", "unknown"], image, remote, URI)
    assert [(p.tag, p.action) for p in plans] == [
        ("same-config", UNCHANGED),
        ("recorded", UNCHANGED),
        ("other", MOVE),
        ("absent", CREATE),
        ("unknown", CREATE),
    ]
    assert plans[2].before == MANIFEST and plans[2].before_image == OTHER_IMAGE
    # a digest recorded for another repository proves nothing about this one
    assert recorded_digests(image.repo_digests, URI) == {OTHER_MANIFEST}


def test_immutable_violations_only_for_moves_in_immutable_repositories():
    plans = [TagPlan("a", MOVE, MANIFEST), TagPlan("b", CREATE, None), TagPlan("c", UNCHANGED, MANIFEST)]
    assert [p.tag for p in immutable_violations(plans, True)] == ["a"]
    assert immutable_violations(plans, False) == []


def test_predicted_digest():
    image = LocalImage(IMAGE, repo_digests=[f"{URI}@{MANIFEST}"])
    assert predicted_digest(TagPlan("x", UNCHANGED, OTHER_MANIFEST), image, URI) == OTHER_MANIFEST
    assert predicted_digest(TagPlan("x", CREATE, None), image, URI) == MANIFEST
    assert predicted_digest(TagPlan("x", CREATE, None), LocalImage(IMAGE), URI) is None


def test_parse_push_events():
    events = [
        {"status": "The push refers to repository [127.0.0.1:5000/app]"},
        {"status": "Pushed", "id": "abc"},
        {"status": "1.0: digest: ...", "progressDetail": {}},
        {"aux": {"Tag": "1.0", "Digest": MANIFEST, "Size": 528}},
    ]
    assert parse_push_events(events) == MANIFEST
    with pytest.raises(RegistryError, match="tag invalid"):
        parse_push_events([{"errorDetail": {"message": "tag invalid: immutable"}, "error": "tag invalid: immutable"}])


class FakeResponse:
    def __init__(self, status, headers, body):
        self.status, self.headers, self._body = status, headers, body

    def read(self):
        return self._body


def opener_for(answers, calls):
    def opener(url, **kwargs):
        calls.append((url, kwargs))
        code, headers, body = answers[url.rsplit("/", 1)[1]]
        if code >= 400:
            raise urllib.error.HTTPError(url, code, "err", headers, io.BytesIO(body))
        return FakeResponse(code, headers, body)

    return opener


def test_registry_v2_reader():
    body = manifest(IMAGE).encode()
    answers = {
        "1.0": (200, {"Docker-Content-Digest": MANIFEST, "Content-Type": MANIFEST_V2}, body),
        "nodigest": (200, {"Content-Type": MANIFEST_V2 + "; charset=utf-8"}, body),
        "absent": (404, {}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'),
    }
    calls = []
    reader = RegistryV2TagReader("http://127.0.0.1:5000/", "AWS", "pw", opener_for(answers, calls))
    found = reader.lookup("webstack/app", ["1.0", "nodigest", "absent"])
    assert found["1.0"] == RemoteTag("1.0", MANIFEST, IMAGE, MANIFEST_V2)
    assert found["nodigest"].digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert found["nodigest"].media_type == MANIFEST_V2
    assert not found["absent"].exists
    url, kwargs = calls[0]
    assert url == "http://127.0.0.1:5000/v2/webstack/app/manifests/1.0"
    assert kwargs["url_username"] == "AWS" and kwargs["force_basic_auth"] is True
    assert MANIFEST_V2 in kwargs["headers"]["Accept"]


def test_registry_v2_reader_errors():
    answers = {"denied": (401, {}, b"unauthorized"), "broken": (500, {}, b"boom")}
    reader = RegistryV2TagReader("http://r", "AWS", "pw", opener_for(answers, []))
    with pytest.raises(RegistryAuthError, match="HTTP 401"):
        reader.lookup("app", ["denied"])
    with pytest.raises(RegistryError, match="HTTP 500 for app:broken: boom"):
        reader.lookup("app", ["broken"])

    def unreachable(url, **kwargs):
        raise urllib.error.URLError("connection refused")

    with pytest.raises(RegistryError, match="could not reach"):
        RegistryV2TagReader("http://r", None, None, unreachable).lookup("app", ["x"])


def test_ecr_tag_reader_against_moto_in_process():
    moto = pytest.importorskip("moto")
    import boto3

    with moto.mock_aws():
        ecr = boto3.client("ecr", region_name="us-east-1")
        ecr.create_repository(repositoryName="webstack/app")
        ecr.put_image(repositoryName="webstack/app", imageManifest=manifest(IMAGE), imageTag="1.0")
        found = EcrTagReader(ecr, retry=False).lookup("webstack/app", ["1.0", "2.0"])
    assert found["1.0"].exists
    assert found["1.0"].digest.startswith("sha256:")
    assert found["1.0"].config_digest == IMAGE
    assert not found["2.0"].exists


def test_ecr_tag_reader_raises_on_unexpected_failures():
    class Client:
        def batch_get_image(self, **kwargs):
            assert kwargs["aws_retry"] is True
            return {"images": [], "failures": [{"imageId": {"imageTag": "x"}, "failureCode": "KmsError"}]}

    with pytest.raises(RegistryError, match="KmsError"):
        EcrTagReader(Client()).lookup("app", ["x"])
