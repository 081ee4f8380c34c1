# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options every blue/green module that reads a host's release state shares."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  state_dir:
    description: Directory of the release records.
    type: path
    default: /var/lib/webstack/releases
  live_dir:
    description: Directory of nginx's live-colour files.
    type: path
    default: /etc/nginx/webstack/live
"""
