# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ECR repository settings of webstack.deploy.ecr_push: what the repository should look like
and which API calls get it there. Pure functions, unit tested without AWS."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MUTABLE = "MUTABLE"
IMMUTABLE = "IMMUTABLE"


def lifecycle_policy(retain: int) -> dict[str, Any]:
    """Lifecycle policy that expires every image but the ``retain`` most recently pushed ones."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"webstack.deploy.ecr_push: keep the {retain} newest images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": retain},
                "action": {"type": "expire"},
            }
        ]
    }


def retained_count(policy_text: str | None) -> int | None:
    """``countNumber`` of a policy this module wrote, None for no policy or a policy of another shape."""
    if not policy_text:
        return None
    try:
        policy = json.loads(policy_text)
    except ValueError:
        return None
    rules = policy.get("rules") if isinstance(policy, Mapping) else None
    if not isinstance(rules, list) or len(rules) != 1:
        return None
    selection = rules[0].get("selection", {})
    if (
        rules[0].get("action", {}).get("type") == "expire"
        and selection.get("tagStatus") == "any"
        and selection.get("countType") == "imageCountMoreThan"
        and isinstance(selection.get("countNumber"), int)
    ):
        return selection["countNumber"]
    return None


def policy_matches(policy_text: str | None, retain: int) -> bool:
    """True when the repository's lifecycle policy already is the one ``retain`` asks for."""
    if not policy_text:
        return False
    try:
        current = json.loads(policy_text)
    except ValueError:
        return False
    return _canonical(current) == _canonical(lifecycle_policy(retain))


def _canonical(policy: Any) -> Any:
    # AWS echoes the policy text it was given, but compare structurally so key order and
    # whitespace never count as a change.
    return json.loads(json.dumps(policy, sort_keys=True))


@dataclass(frozen=True)
class RepositoryState:
    """The settings ecr_push manages, as they are (or would be) on the repository."""

    exists: bool
    tag_immutability: bool | None = None
    scan_on_push: bool | None = None
    lifecycle_retain: int | None = None
    lifecycle_policy_text: str | None = None

    @classmethod
    def from_api(cls, repository: Mapping[str, Any] | None, policy_text: str | None) -> RepositoryState:
        if repository is None:
            return cls(exists=False)
        return cls(
            exists=True,
            tag_immutability=repository.get("imageTagMutability", MUTABLE).startswith(IMMUTABLE),
            scan_on_push=bool(repository.get("imageScanningConfiguration", {}).get("scanOnPush", False)),
            lifecycle_retain=retained_count(policy_text),
            lifecycle_policy_text=policy_text,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "exists": self.exists,
            "tag_immutability": self.tag_immutability,
            "scan_on_push": self.scan_on_push,
            "lifecycle_retain": self.lifecycle_retain,
        }


@dataclass(frozen=True)
class RepositoryChange:
    """One API call that moves the repository towards the requested settings."""

    # create_repository, put_image_tag_mutability, put_image_scanning_configuration or put_lifecycle_policy
    operation: str
    params: dict[str, Any]
    reason: str


def plan_repository(
    name: str,
    current: RepositoryState,
    tag_immutability: bool | None,
    scan_on_push: bool | None,
    lifecycle_retain: int | None,
) -> tuple[list[RepositoryChange], RepositoryState]:
    """API calls needed so the repository has the requested settings, and the resulting state.

    Options left unset (None) keep what the repository has (AWS defaults for a new one:
    mutable tags, no scan on push, no lifecycle policy).
    """
    changes: list[RepositoryChange] = []
    if not current.exists:
        immutable = bool(tag_immutability)
        scan = bool(scan_on_push)
        changes.append(
            RepositoryChange(
                "create_repository",
                {
                    "repositoryName": name,
                    "imageTagMutability": IMMUTABLE if immutable else MUTABLE,
                    "imageScanningConfiguration": {"scanOnPush": scan},
                },
                f"repository {name} does not exist",
            )
        )
        policy_text = None
    else:
        immutable = current.tag_immutability if tag_immutability is None else tag_immutability
        scan = current.scan_on_push if scan_on_push is None else scan_on_push
        if immutable != current.tag_immutability:
            changes.append(
                RepositoryChange(
                    "put_image_tag_mutability",
                    {"repositoryName": name, "imageTagMutability": IMMUTABLE if immutable else MUTABLE},
                    f"tag immutability is {current.tag_immutability}, requested {immutable}",
                )
            )
        if scan != current.scan_on_push:
            changes.append(
                RepositoryChange(
                    "put_image_scanning_configuration",
                    {"repositoryName": name, "imageScanningConfiguration": {"scanOnPush": scan}},
                    f"scan on push is {current.scan_on_push}, requested {scan}",
                )
            )
        policy_text = current.lifecycle_policy_text
    retain = current.lifecycle_retain
    if lifecycle_retain is not None and not policy_matches(current.lifecycle_policy_text, lifecycle_retain):
        policy_text = json.dumps(lifecycle_policy(lifecycle_retain), sort_keys=True)
        retain = lifecycle_retain
        changes.append(
            RepositoryChange(
                "put_lifecycle_policy",
                {"repositoryName": name, "lifecyclePolicyText": policy_text},
                f"lifecycle policy keeps {current.lifecycle_retain} images, requested {lifecycle_retain}",
            )
        )
    after = RepositoryState(True, immutable, scan, retain, policy_text)
    return changes, after
