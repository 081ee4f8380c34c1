"""Make this checkout importable as ``ansible_collections.webstack.deploy`` (its filters check what the host holds)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))


def _collections_root() -> Path:
    root = PROJECT / ".collections"
    if (root / "ansible_collections" / "webstack" / "deploy" / "galaxy.yml").exists():
        return root
    root = Path(tempfile.mkdtemp(prefix="webstack-molecule-"))
    (root / "ansible_collections" / "webstack").mkdir(parents=True)
    (root / "ansible_collections" / "webstack" / "deploy").symlink_to(PROJECT)
    return root


if not any(type(f).__name__ == "_AnsibleCollectionFinder" for f in sys.meta_path):
    _AnsibleCollectionFinder(paths=[str(_collections_root())], scan_sys_paths=True)._install()
