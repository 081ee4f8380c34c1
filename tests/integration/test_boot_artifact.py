"""The collection artifact playbooks/aws.yml uploads for booting instances is the same file for the same content.

ansible-galaxy records each file's modification time (a pax header) and lists members in the order the
file system returns them. A checkout that was only touched (a directory that got a new ignored entry, a
file rewritten with the same bytes, a fresh clone) must give the same artifact, or every provisioning run
uploads it again and its check mode reports a change. The repack step of aws.yml is run here as the play
runs it, on two builds of one copy of the collection.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def repack_script() -> str:
    plays = yaml.safe_load((REPO_ROOT / "playbooks" / "aws.yml").read_text())
    (script,) = [play["vars"]["__aws_boot_repack"] for play in plays if "__aws_boot_repack" in play.get("vars", {})]
    return script


def build(source: Path, out: Path) -> Path:
    """ansible-galaxy collection build, then the play's repack; returns the repacked artifact."""
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = out.glob("webstack-deploy-*.tar.gz")
    artifact = out / "artifact.tar.gz"
    subprocess.run([sys.executable, "-c", repack_script(), str(built), str(artifact)], check=True)
    return artifact


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the collection's files (what git tracks), as a checkout holds them."""
    copy = tmp_path_factory.mktemp("checkout") / "collection"
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, check=True, capture_output=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target, follow_symlinks=False)
    return copy


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_touched_checkout_gives_the_same_artifact(source: Path, tmp_path: Path):
    first = build(source, tmp_path / "first")
    # What a test run or an operator's tools do to a checkout without changing the collection.
    os.utime(source / "README.md", (1_000_000_000, 1_000_000_000))
    (source / "inventories" / "prod" / ".cache").mkdir()  # an ignored entry: the directory's time moves
    os.utime(source / "roles" / "base", (2_000_000_000, 2_000_000_000))
    second = build(source, tmp_path / "second")
    assert digest(first) == digest(second)

    with tarfile.open(first) as artifact:
        members = artifact.getmembers()
    names = [m.name for m in members]
    assert names[:2] == ["MANIFEST.json", "FILES.json"]
    assert names[2:] == sorted(names[2:])
    assert {m.mtime for m in members} == {0}
    assert not [m.name for m in members if "mtime" in m.pax_headers]


def test_a_changed_file_gives_another_artifact_that_installs_and_verifies(source: Path, tmp_path: Path):
    before = build(source, tmp_path / "before")
    readme = source / "README.md"
    readme.write_text(readme.read_text() + "\nOne more line.\n")
    after = build(source, tmp_path / "after")
    assert digest(before) != digest(after)

    # The repacked FILES.json and MANIFEST.json still agree with the files: ansible-galaxy installs
    # the artifact and verifies every checksum.
    installed = tmp_path / "installed"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed))
    for command in (
        ["install", "--no-deps", "-p", str(installed), str(after)],
        ["verify", "--offline", "-p", str(installed), "webstack.deploy"],
    ):
        run = subprocess.run(
            [str(BIN / "ansible-galaxy"), "collection", *command], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stdout + run.stderr
    assert "One more line." in (installed / "ansible_collections" / "webstack" / "deploy" / "README.md").read_text()
