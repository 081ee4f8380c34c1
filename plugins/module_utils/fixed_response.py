# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the listener_fixed_response module, apart from the API calls that carry them out.

A rule is compared in a normal form, ``{"path_patterns": [...], "status_code": "503",
"content_type": "text/html", "message_body": "..."}``, built from what ``DescribeRules`` returns, so
the order of conditions or the absence of an optional key never reads as a change.
"""

from __future__ import annotations

MAX_MESSAGE_BODY = 1024  # Elastic Load Balancing's limit for a fixed response
CONTENT_TYPES = ("text/plain", "text/css", "text/html", "application/javascript", "application/json")


def wanted(path_patterns: list[str], status_code: int, content_type: str, message_body: str) -> dict:
    """The rule asked for, in normal form."""
    return {
        "path_patterns": sorted(path_patterns),
        "status_code": str(status_code),
        "content_type": content_type,
        "message_body": message_body,
    }


def check_input(path_patterns: list[str], status_code: int, message_body: str) -> list[str]:
    """What is wrong with the options (empty when nothing is): ELB would refuse these with a vaguer error."""
    problems = []
    if not 1 <= len(path_patterns) <= 5:
        problems.append(f"path_patterns: give 1 to 5 patterns (got {len(path_patterns)})")
    if not 200 <= status_code <= 599:
        problems.append(f"status_code: must be 200-599 (got {status_code})")
    if len(message_body.encode()) > MAX_MESSAGE_BODY:
        problems.append(f"message_body: at most {MAX_MESSAGE_BODY} bytes (got {len(message_body.encode())})")
    return problems


def normal_form(rule: dict) -> dict | None:
    """A described rule in normal form, or None when it is not a plain fixed-response rule on path patterns."""
    actions = rule.get("Actions") or []
    conditions = rule.get("Conditions") or []
    if len(actions) != 1 or actions[0].get("Type") != "fixed-response":
        return None
    if not conditions or any(c.get("Field") != "path-pattern" for c in conditions):
        return None
    patterns: list[str] = []
    for condition in conditions:
        patterns.extend(condition.get("PathPatternConfig", {}).get("Values") or condition.get("Values") or [])
    config = actions[0].get("FixedResponseConfig", {})
    status = int(config.get("StatusCode", 0))
    return wanted(patterns, status, config.get("ContentType", ""), config.get("MessageBody", ""))


def api_form(rule: dict) -> tuple[list[dict], list[dict]]:
    """(Conditions, Actions) of CreateRule / ModifyRule for a rule in normal form."""
    conditions = [{"Field": "path-pattern", "PathPatternConfig": {"Values": rule["path_patterns"]}}]
    actions = [
        {
            "Type": "fixed-response",
            "FixedResponseConfig": {
                "StatusCode": rule["status_code"],
                "ContentType": rule["content_type"],
                "MessageBody": rule["message_body"],
            },
        }
    ]
    return conditions, actions


def decide(present: bool, rule_at_priority: dict | None, priority: int, target: dict) -> tuple[str, str]:
    """(action, reason): action is one of ``create``, ``modify``, ``delete``, ``none`` or ``fail``.

    ``rule_at_priority`` is the listener's described rule holding ``priority`` (None if free). A rule
    there that is not a fixed-response rule belongs to someone else: it is never replaced or removed.
    """
    if rule_at_priority is None:
        return ("create", f"no rule at priority {priority}") if present else ("none", "no rule to remove")
    current = normal_form(rule_at_priority)
    if current is None:
        kinds = ", ".join(a.get("Type", "?") for a in rule_at_priority.get("Actions") or [])
        message = (
            f"priority {priority} of the listener holds another rule ({kinds}, {rule_at_priority.get('RuleArn')}); "
            "choose a free priority"
        )
        return ("fail", message) if present else ("none", message)
    if not present:
        return "delete", f"fixed-response rule at priority {priority}"
    if current == target:
        return "none", "the rule is as wanted"
    return "modify", f"the rule at priority {priority} differs"
