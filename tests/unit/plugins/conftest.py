"""Make ``ansible_collections.webstack.deploy`` (this checkout) and the collections of the Python
environment (amazon.aws, ...) importable, as ansible-test's units test does."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

REPO_ROOT = Path(__file__).resolve().parents[3]


def _collections_root() -> Path:
    """A directory holding ansible_collections/webstack/deploy -> this checkout."""
    root = REPO_ROOT / ".collections"
    if (root / "ansible_collections" / "webstack" / "deploy" / "galaxy.yml").exists():
        return root
    root = Path(tempfile.mkdtemp(prefix="webstack-units-"))
    (root / "ansible_collections" / "webstack").mkdir(parents=True)
    (root / "ansible_collections" / "webstack" / "deploy").symlink_to(REPO_ROOT)
    return root


def _install_collection_finder() -> None:
    if any(type(f).__name__ == "_AnsibleCollectionFinder" for f in sys.meta_path):
        return  # ansible-test already did
    _AnsibleCollectionFinder(paths=[str(_collections_root())], scan_sys_paths=True)._install()


_install_collection_finder()
