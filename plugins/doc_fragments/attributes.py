# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection's module attributes mean; each module says how far it supports them."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
"""

    # The modules that call AWS APIs: module_defaults can set their connection options as a group.
    AWS = r"""
attributes:
  action_group:
    description: Use C(group/webstack.deploy.aws) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - webstack.deploy.aws
"""
