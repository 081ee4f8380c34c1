"""Decisions of ecr_push on the repository side: which settings change, with which API call."""

from __future__ import annotations

import json

from ansible_collections.webstack.deploy.plugins.module_utils.ecr import (
    RepositoryState,
    lifecycle_policy,
    plan_repository,
    policy_matches,
    retained_count,
)


def repo(mutability="MUTABLE", scan=False):
    return {"imageTagMutability": mutability, "imageScanningConfiguration": {"scanOnPush": scan}}


def test_lifecycle_policy_round_trip():
    text = json.dumps(lifecycle_policy(7))
    assert retained_count(text) == 7
    assert policy_matches(text, 7)
    assert not policy_matches(text, 8)
    # AWS may hand the text back with other key order or spacing
    assert policy_matches(json.dumps(json.loads(text), indent=4, sort_keys=True), 7)
    assert retained_count(None) is None
    assert retained_count('{"rules": [{"action": {"type": "expire"}, "selection": {"tagStatus": "untagged"}}]}') is None
    assert retained_count("not json") is None


def test_state_from_api():
    state = RepositoryState.from_api(repo("IMMUTABLE", True), json.dumps(lifecycle_policy(3)))
    assert state.summary() == {"exists": True, "tag_immutability": True, "scan_on_push": True, "lifecycle_retain": 3}
    assert RepositoryState.from_api(repo("IMMUTABLE_WITH_EXCLUSION"), None).tag_immutability is True
    assert RepositoryState.from_api(None, None).exists is False


def test_new_repository_is_created_with_requested_settings():
    changes, after = plan_repository("app", RepositoryState(False), True, None, 5)
    assert [c.operation for c in changes] == ["create_repository", "put_lifecycle_policy"]
    assert changes[0].params == {
        "repositoryName": "app",
        "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": False},
    }
    assert after.summary() == {"exists": True, "tag_immutability": True, "scan_on_push": False, "lifecycle_retain": 5}


def test_unset_options_keep_what_the_repository_has():
    current = RepositoryState.from_api(repo("IMMUTABLE", True), json.dumps(lifecycle_policy(3)))
    changes, after = plan_repository("app", current, None, None, None)
    assert changes == []
    assert after.summary() == current.summary()


def test_only_differing_settings_change():
    current = RepositoryState.from_api(repo("MUTABLE", True), json.dumps(lifecycle_policy(3)))
    changes, after = plan_repository("app", current, True, True, 3)
    assert [c.operation for c in changes] == ["put_image_tag_mutability"]
    assert changes[0].params == {"repositoryName": "app", "imageTagMutability": "IMMUTABLE"}
    changes, after = plan_repository("app", current, None, False, 4)
    assert [c.operation for c in changes] == ["put_image_scanning_configuration", "put_lifecycle_policy"]
    assert after.lifecycle_retain == 4
    assert json.loads(changes[1].params["lifecyclePolicyText"]) == lifecycle_policy(4)


def test_foreign_lifecycle_policy_is_replaced_only_when_asked():
    foreign = '{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged"}, "action": {"type": "expire"}}]}'
    current = RepositoryState.from_api(repo(), foreign)
    assert plan_repository("app", current, None, None, None)[0] == []
    changes = plan_repository("app", current, None, None, 10)[0]
    assert [c.operation for c in changes] == ["put_lifecycle_policy"]
