"""execution-environment.yml: ``ansible-builder create`` makes the build context (no network, no container
runtime needed) and what goes into it matches what the collection declares.

* Python: the context's requirements.txt is the repository's requirements.txt (the ``ansible`` package, which
  brings ansible-core and the collections galaxy.yml depends on, and the modules' libraries).
* Collections: every dependency in galaxy.yml is satisfied by the collections of that pinned ``ansible``
  package (checked in this environment, which installs the same pin), the collection itself is the tarball
  ``ansible-galaxy collection build`` makes, with galaxy.yml's name, version and dependencies.
* ansible-core: the pin of the EE is the version the pinned ``ansible`` package installs.
* System: the context's bindep.txt is the repository's bindep.txt; the package manager is dnf/microdnf
  (ansible-builder needs an RPM-based base image).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return sorted(line for line in lines if line)


@pytest.fixture(scope="module")
def galaxy() -> dict:
    return yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())


@pytest.fixture(scope="module")
def ee() -> dict:
    return yaml.safe_load((REPO_ROOT / "execution-environment.yml").read_text())


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory, ee: dict) -> Path:
    """The build context made from a copy of the EE's inputs, with the collection tarball built fresh."""
    if not (BIN / "ansible-builder").exists():
        pytest.fail("ansible-builder is not installed: pip install -r requirements-test.txt")
    work = tmp_path_factory.mktemp("ops-ee")
    deps = ee["dependencies"]
    inputs = ["execution-environment.yml", deps["python"], deps["system"], deps["galaxy"]]
    for name in inputs:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, work / name)
    build = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(work / "build"), "."],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    start = time.monotonic()
    create = subprocess.run(
        [str(BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", str(work / "context"),
         "--output-filename", "Containerfile"],
        cwd=work, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert create.returncode == 0, create.stdout + create.stderr
    print(f"ansible-builder create: {time.monotonic() - start:.1f} s")
    return work / "context"


def test_context_holds_a_containerfile_on_the_rpm_base(context: Path, ee: dict):
    containerfile = (context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{ee["images"]["base_image"]["name"]}"' in containerfile
    assert Path(ee["options"]["package_manager_path"]).name in ("dnf", "microdnf")
    assert ee["version"] == 3
    # Collection dependencies come from the ansible package, not from Galaxy.
    assert 'ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--no-deps"' in containerfile


def test_python_requirements_are_the_collections(context: Path):
    assert requirement_lines(context / "_build" / "requirements.txt") == requirement_lines(
        REPO_ROOT / "requirements.txt"
    )


def test_system_requirements_are_the_collections(context: Path):
    assert (context / "_build" / "bindep.txt").read_text() == (REPO_ROOT / "bindep.txt").read_text()


def test_ansible_core_pin_is_what_the_ansible_package_installs(ee: dict):
    pins = {Requirement(line).name: line for line in requirement_lines(REPO_ROOT / "requirements.txt")}
    ansible_pin = Requirement(pins["ansible"])
    assert metadata.version("ansible") in ansible_pin.specifier, "this environment must install the same ansible"
    core = Requirement(ee["dependencies"]["ansible_core"]["package_pip"])
    assert core.name == "ansible-core"
    assert metadata.version("ansible-core") in core.specifier
    core_needed = [Requirement(r) for r in metadata.requires("ansible") or [] if r.startswith("ansible-core")]
    assert all(metadata.version("ansible-core") in r.specifier for r in core_needed)


def test_collection_tarball_is_this_collection(context: Path, galaxy: dict):
    requested = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    tarball = f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert requested == [{"name": f"/build/collections/{tarball}", "type": "file"}]
    with tarfile.open(context / "_build" / "collections" / tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
        names = tar.getnames()
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == (
        galaxy["namespace"],
        galaxy["name"],
        galaxy["version"],
    )
    assert manifest["dependencies"] == galaxy["dependencies"]
    assert "playbooks/maintenance.yml" in names
    assert "roles/nginx/tasks/maintenance.yml" in names


def test_galaxy_dependencies_come_with_the_pinned_ansible_package(galaxy: dict):
    root = Path(metadata.distribution("ansible").locate_file("ansible_collections"))
    for fqcn, spec in galaxy["dependencies"].items():
        manifest = root.joinpath(*fqcn.split("."), "MANIFEST.json")
        assert manifest.is_file(), f"{fqcn} is not in the ansible package ({root})"
        version = json.loads(manifest.read_text())["collection_info"]["version"]
        assert Version(version) in SpecifierSet(spec.replace(" ", "")), f"{fqcn} {version} does not satisfy {spec}"
