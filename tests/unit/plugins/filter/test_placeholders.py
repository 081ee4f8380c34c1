"""What the placeholder filter counts as a value still to be filled in, and what it lets through."""

from __future__ import annotations

import pytest
from ansible_collections.webstack.deploy.plugins.filter.placeholders import placeholder_reason, placeholders


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        [],
        "ami-00000000000000000",
        "arn:aws:acm:eu-west-1:123456789012:certificate/3f1c7a52-9b0e-4d8e-b1a2-6c5d4e3f2a10",
        "arn:aws:acm:eu-west-1:210987654321:certificate/00000000-0000-0000-0000-000000000000",
        "123456789012",
        "111122223333.dkr.ecr.eu-west-1.amazonaws.com/webstack/app",
        "ops@example.com",
        "alerts@ops.example.org",
        "admin@webstack.invalid",
        "CHANGE_ME",
        "ami-REPLACE-ME",
        "<your AMI>",
        "todo",
        ["ops@webstack.io", "ops@example.net"],
    ],
)
def test_placeholders_are_recognised(value):
    assert placeholder_reason(value) is not None


@pytest.mark.parametrize(
    "value",
    [
        "ami-0a1b2c3d4e5f60718",
        "arn:aws:acm:eu-west-1:210987654321:certificate/3f1c7a52-9b0e-4d8e-b1a2-6c5d4e3f2a10",
        "210987654321",
        "1234567890123",  # 13 digits: not an account ID
        "ops@webstack.io",
        "ops@example.company.com",  # only the reserved names themselves
        "210987654321.dkr.ecr.eu-west-1.amazonaws.com/webstack/app",
        ["ops@webstack.io"],
        42,
    ],
)
def test_real_values_pass(value):
    assert placeholder_reason(value) is None


def test_result_names_each_variable_in_order():
    found = placeholders(
        {
            "aws_account_id": "123456789012",
            "aws_autoscaling_ami_id": "ami-0a1b2c3d4e5f60718",
            "aws_alarms_email": "ops@example.com",
        }
    )
    assert [f["var"] for f in found] == ["aws_account_id", "aws_alarms_email"]
    assert found[0]["msg"].startswith("aws_account_id is still a placeholder ('123456789012'")
    assert "documentation account ID" in found[0]["reason"]
    assert "reserved for documentation" in found[1]["reason"]


def test_undefined_is_reported_with_an_empty_value():
    (found,) = placeholders({"aws_certificate_arn": None})
    assert found["value"] == ""
    assert found["reason"] == "it is empty"


def test_input_must_be_a_mapping():
    with pytest.raises(TypeError, match="expects a dict"):
        placeholders(["aws_account_id"])
