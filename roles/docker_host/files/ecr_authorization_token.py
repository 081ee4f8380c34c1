#!/usr/bin/env python3
"""Print an ECR registry login as JSON: username, password, endpoint, expiry.

Run by the docker_host role (ansible.builtin.script, on the controller by
default) with the Python that runs Ansible, which has boto3. Credentials come
from boto3's usual chain (environment, profile, instance role).

Usage: ecr_authorization_token.py --region R [--registry-id ID] [--endpoint-url URL]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--registry-id", default="")
    parser.add_argument("--endpoint-url", default="")
    args = parser.parse_args()
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        print(
            "ecr_authorization_token: boto3 is not installed for this Python "
            f"({sys.executable}); install it (requirements.txt) on the host that fetches the token",
            file=sys.stderr,
        )
        return 2
    client = boto3.client("ecr", region_name=args.region, endpoint_url=args.endpoint_url or None)
    request = {"registryIds": [args.registry_id]} if args.registry_id else {}
    try:
        data = client.get_authorization_token(**request)["authorizationData"][0]
    except (BotoCoreError, ClientError) as err:
        print(f"ecr_authorization_token: ECR in {args.region} refused a token: {err}", file=sys.stderr)
        return 1
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    if not password:
        print("ecr_authorization_token: ECR answered a token that is not 'user:password' in base64", file=sys.stderr)
        return 1
    json.dump(
        {
            "username": username,
            "password": password,
            "endpoint": data["proxyEndpoint"],
            "expires_at": data["expiresAt"].isoformat(),
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
