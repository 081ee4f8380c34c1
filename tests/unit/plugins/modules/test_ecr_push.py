"""ecr_push's handling of what the Docker engine answers: errors become messages that say what to do."""

from __future__ import annotations

import pytest

docker = pytest.importorskip("docker")

from ansible_collections.webstack.deploy.plugins.modules import ecr_push


class Failed(Exception):
    def __init__(self, kwargs):
        super().__init__(kwargs["msg"])
        self.kwargs = kwargs


class FakeModule:
    region = "eu-west-1"
    check_mode = False

    def __init__(self, **params):
        self.params = {"source": "webstack/app:1", "docker_host": "unix:///var/run/docker.sock", "registry_url": None}
        self.params.update(params)

    def fail_json(self, **kwargs):
        raise Failed(kwargs)


def pusher(**params) -> ecr_push.EcrPush:
    push = object.__new__(ecr_push.EcrPush)  # no AWS client needed for these paths
    push.module = FakeModule(**params)
    push.params = push.module.params
    push.name = "webstack/app"
    return push


class Engine:
    """Stands in for docker.DockerClient where the module talks to it."""

    def __init__(self, login_error=None, image_error=None, push_events=()):
        self.login_error, self.image_error, self.push_events = login_error, image_error, push_events
        self.images = self

    def login(self, **kwargs):
        if self.login_error:
            raise self.login_error

    def get(self, name):
        raise self.image_error

    def push(self, *args, **kwargs):
        return iter(self.push_events)


def test_login_refused_by_the_registry_is_named_as_such():
    # what docker 20.10 answers for a 401 of the registry
    error = docker.errors.APIError(
        "500 Server Error",
        explanation="login attempt to http://127.0.0.1:5000/v2/ failed with status: 401 Unauthorized",
    )
    with pytest.raises(Failed) as failed:
        pusher(registry_url="http://127.0.0.1:5000").login(
            Engine(login_error=error), "127.0.0.1:5000", "AWS", "pw", "http://127.0.0.1:5000"
        )
    msg = str(failed.value)
    assert msg.startswith("The registry 127.0.0.1:5000 refused the credentials from ECR get_authorization_token")
    assert "401 Unauthorized" in msg
    assert "same AWS account and region" in msg and "eu-west-1" in msg


def test_other_login_errors_are_reported_as_they_are():
    error = docker.errors.APIError("500 Server Error", explanation="dial tcp: connection refused")
    with pytest.raises(Failed, match="Docker could not log in to the registry r:1: dial tcp"):
        pusher().login(Engine(login_error=error), "r:1", "AWS", "pw", None)


def test_missing_local_image():
    with pytest.raises(Failed) as failed:
        pusher(source="nope:1").local_image(Engine(image_error=docker.errors.ImageNotFound("no such image")))
    assert "Local image 'nope:1' was not found in the Docker engine at unix:///var/run/docker.sock" in str(failed.value)


class Image:
    def tag(self, *args, **kwargs):
        return True


@pytest.mark.parametrize(
    ("event_error", "expected"),
    [
        (
            "tag invalid: The image tag '1' already exists and cannot be overwritten because the repository is "
            "immutable.",
            "refused to move the immutable tag 1",
        ),
        ("unauthorized: authentication required", "refused the credentials"),
        ("blob upload unknown", "Pushing r:1/webstack/app:1 failed: blob upload unknown"),
    ],
)
def test_push_errors(event_error, expected):
    engine = Engine(
        push_events=[{"status": "Preparing"}, {"errorDetail": {"message": event_error}, "error": event_error}]
    )
    with pytest.raises(Failed, match=expected):
        pusher().push(engine, Image(), "r:1/webstack/app", "1", "AWS", "pw")


def test_push_returns_the_digest_the_engine_reports():
    engine = Engine(push_events=[{"status": "Pushed"}, {"aux": {"Tag": "1", "Digest": "sha256:abc", "Size": 1}}])
    assert pusher().push(engine, Image(), "r:1/webstack/app", "1", "AWS", "pw") == "sha256:abc"
