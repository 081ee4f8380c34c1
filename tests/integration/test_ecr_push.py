"""webstack.deploy.ecr_push against moto's ECR API and a real Distribution registry.

moto hands out the authorization token and keeps the repository settings; the registry
(``registry_url``) receives the layers and tells what each tag holds.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

MODULE = "webstack.deploy.ecr_push"


def push_task(name: str, repository: str, source: str, registry, check: bool = False, **options) -> dict:
    args = {"repository": repository, "source": source, "registry_url": registry.url, **options}
    task = {"name": name, MODULE: args}
    if check:
        task["check_mode"] = True
    return task


@pytest.fixture
def repository() -> str:
    return f"webstack/ecr-push-{uuid.uuid4().hex[:8]}"


def test_check_apply_apply_check(run_play, registry, make_image, aws_client, docker_client, repository):
    source = make_image("sequence")
    options = {"tags": ["1.0.0", "latest"], "scan_on_push": True, "lifecycle_retain": 5, "tag_immutability": False}
    ecr = aws_client("ecr")

    first = run_play([push_task("check", repository, source, registry, check=True, **options)])
    check = first.tasks["check"]
    assert first.rc == 0, first.output
    assert check["changed"] is True
    assert check["pushed"] is True
    assert check["pushed_tags"] == ["1.0.0", "latest"]
    assert check["repository"]["changes"] == ["create_repository", "put_lifecycle_policy"]
    assert check["diff"]["before"]["tags"] == {"1.0.0": None, "latest": None}
    assert check["diff"]["before"]["repository"]["exists"] is False
    assert check["diff"]["after"]["repository"]["lifecycle_retain"] == 5
    # check mode changed nothing: no repository, no tag, no local tag for the registry
    with pytest.raises(ClientError, match="RepositoryNotFoundException"):
        ecr.describe_repositories(repositoryNames=[repository])
    assert registry.manifest_digest(repository, "1.0.0") is None
    assert not [t for t in docker_client.images.get(source).tags if t.startswith(registry.host)]

    started = time.monotonic()
    rest = run_play(
        [
            push_task("apply", repository, source, registry, **options),
            push_task("apply again", repository, source, registry, **options),
            push_task("check again", repository, source, registry, check=True, **options),
        ]
    )
    elapsed = time.monotonic() - started
    assert rest.rc == 0, rest.output
    apply, again, check_again = rest.tasks["apply"], rest.tasks["apply again"], rest.tasks["check again"]

    assert apply["changed"] is True and apply["pushed"] is True
    assert apply["repository_uri"] == f"{registry.host}/{repository}"
    assert apply["image_uri"] == f"{registry.host}/{repository}:1.0.0"
    assert apply["digest"].startswith("sha256:")
    assert apply["image_id"] == docker_client.images.get(source).id
    # the registry really holds the pushed manifest under both tags
    assert registry.manifest_digest(repository, "1.0.0") == apply["digest"]
    assert registry.manifest_digest(repository, "latest") == apply["digest"]
    assert apply["diff"]["after"]["tags"] == {"1.0.0": apply["digest"], "latest": apply["digest"]}
    # and ECR has the repository settings
    repo = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["imageTagMutability"] == "MUTABLE"
    policy = json.loads(ecr.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"])
    assert policy["rules"][0]["selection"]["countNumber"] == 5

    for unchanged in (again, check_again):
        assert unchanged["changed"] is False, unchanged
        assert unchanged["pushed"] is False
        assert unchanged["pushed_tags"] == []
        assert unchanged["digest"] == apply["digest"]
        assert unchanged["repository"]["changes"] == []
        assert {t["action"] for t in unchanged["tags"].values()} == {"unchanged"}
    print(
        f"\necr_push: tasks took {rest.durations} (ansible-playbook run {elapsed:.1f}s); "
        f"image {apply['image_id'][:19]} is {docker_client.images.get(source).attrs['Size']} bytes"
    )


def test_unchanged_is_decided_by_content_not_by_local_records(run_play, registry, make_image, repository):
    """A tag pushed from elsewhere (no RepoDigests here) holding the same image is not pushed again;
    another image under a mutable tag moves it."""
    first, second = make_image("content-a"), make_image("content-b")
    result = run_play(
        [
            push_task("push a", repository, first, registry, tags=["stable"]),
            push_task("push b over a", repository, second, registry, tags=["stable"]),
            push_task("push b again", repository, second, registry, tags=["stable"]),
        ]
    )
    assert result.rc == 0, result.output
    pushed_a, moved, again = (result.tasks[n] for n in ("push a", "push b over a", "push b again"))
    assert moved["changed"] is True
    assert moved["tags"]["stable"]["action"] == "move"
    assert moved["tags"]["stable"]["before"] == pushed_a["digest"]
    assert moved["digest"] != pushed_a["digest"]
    assert registry.manifest_digest(repository, "stable") == moved["digest"]
    assert again["changed"] is False


def test_immutable_tag_that_would_move_is_refused(run_play, registry, make_image, repository, aws_client):
    released, rebuilt = make_image("release"), make_image("rebuild")
    result = run_play(
        [
            push_task("release", repository, released, registry, tags=["2.0.0"], tag_immutability=True),
            {
                **push_task("overwrite", repository, rebuilt, registry, tags=["2.0.0"], tag_immutability=True),
                "ignore_errors": True,
            },
            {
                **push_task("overwrite check", repository, rebuilt, registry, check=True, tags=["2.0.0"]),
                "ignore_errors": True,
            },
        ]
    )
    release, overwrite, overwrite_check = (result.tasks[n] for n in ("release", "overwrite", "overwrite check"))
    assert release["changed"] is True
    for refused in (overwrite, overwrite_check):
        assert refused.get("failed") is True, refused
        assert "immutable tags" in refused["msg"]
        assert "2.0.0 holds image " + release["image_id"][:19] in refused["msg"]
        assert "Push under a new tag" in refused["msg"]
    assert overwrite["tags"]["2.0.0"]["before"] == release["digest"]
    # nothing moved
    assert registry.manifest_digest(repository, "2.0.0") == release["digest"]
    repo = aws_client("ecr").describe_repositories(repositoryNames=[repository])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"


def test_errors_name_what_was_expected(run_play, registry, start_registry, make_image, repository, aws_client):
    source = make_image("errors")
    wrong = start_registry("AWS", "not-the-ecr-token")
    result = run_play(
        [
            {**push_task("missing image", repository, "ecr_push-missing/image:nope", registry), "ignore_errors": True},
            {
                **push_task("no repository", repository, source, registry, create_repository=False),
                "ignore_errors": True,
            },
            {**push_task("refused", repository, source, wrong), "ignore_errors": True},
            {**push_task("bad tag", repository, source, registry, tags=["-bad"]), "ignore_errors": True},
        ]
    )
    missing = result.tasks["missing image"]
    assert missing["failed"] is True
    assert "Local image 'ecr_push-missing/image:nope' was not found" in missing["msg"]
    assert "build or pull" in missing["msg"]

    no_repo = result.tasks["no repository"]
    assert no_repo["failed"] is True
    assert f"ECR repository '{repository}' does not exist" in no_repo["msg"]
    assert "create_repository: true" in no_repo["msg"]

    refused = result.tasks["refused"]
    assert refused["failed"] is True
    assert f"The registry {wrong.host} refused the credentials" in refused["msg"]
    assert "401" in refused["msg"]

    bad_tag = result.tasks["bad tag"]
    assert bad_tag["failed"] is True
    assert "'-bad' is not a valid tag" in bad_tag["msg"]

    # none of the failures created the repository
    with pytest.raises(ClientError, match="RepositoryNotFoundException"):
        aws_client("ecr").describe_repositories(repositoryNames=[repository])
