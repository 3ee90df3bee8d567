"""The Lambda code asset: what goes in, what stays out, and that pip builds it for arm64."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.bundling import (
    BUILD_DIR,
    PROJECT_ROOT,
    BundlingError,
    LocalPythonBundling,
    asset_hash,
    check_lock,
    filtered_requirements,
    install_dependencies,
)

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# Far below Lambda's 250 MB unzipped limit; a guard against an accidental heavy dependency. The
# official MCP SDK (Ignition's only write path) brings cryptography (14 MB) through its OAuth
# support; it is imported only by the code that talks to Ignition's MCP server, so cold starts of
# the other functions do not pay for it.
MAX_DEPENDENCIES_BYTES = 36 * 1024 * 1024


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for package in ("functions", "shared"):
        (tmp_path / package / "tests").mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "tests" / "test_x.py").write_text("")
        (tmp_path / package / "__pycache__").mkdir()
        (tmp_path / package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "requirements.txt").write_text(
        "# runtime\nboto3==1.0\nhttpx==0.28.1  # client\n-r other.txt\n"
    )
    (tmp_path / "requirements.lock").write_text(
        "#    pip-compile --generate-hashes\n"
        "boto3==1.0 \\\n    --hash=sha256:aa\n    # via -r requirements.txt\n"
        "httpx==0.28.1 \\\n    --hash=sha256:bb \\\n    --hash=sha256:cc\n    # via -r requirements.txt\n"
    )
    return tmp_path


def test_given_requirements_when_filtered_then_runtime_provided_packages_and_options_are_dropped(
    project: Path,
) -> None:
    assert filtered_requirements(project / "requirements.txt") == ["httpx==0.28.1"]
    assert not any(
        line.startswith(("boto3", "botocore"))
        for line in filtered_requirements(PROJECT_ROOT / "requirements.txt")
    )


def test_given_a_hashed_lock_when_filtered_then_each_entry_keeps_all_its_hashes(project: Path) -> None:
    assert filtered_requirements(project / "requirements.lock") == [
        "httpx==0.28.1 --hash=sha256:bb --hash=sha256:cc"
    ]


def test_given_a_lock_behind_its_requirements_when_bundling_then_refused_naming_make_lock(
    project: Path,
) -> None:
    check_lock(project / "requirements.txt", project / "requirements.lock")
    (project / "requirements.txt").write_text("httpx==0.28.2\n")

    with pytest.raises(BundlingError, match=r"httpx==0\.28\.2.*make lock"):
        check_lock(project / "requirements.txt", project / "requirements.lock")
    with pytest.raises(BundlingError):
        install_dependencies(project, project / ".build")


def test_given_the_project_locks_then_every_package_is_pinned_with_hashes_and_both_locks_agree() -> None:
    check_lock(PROJECT_ROOT / "requirements.txt", PROJECT_ROOT / "requirements.lock")
    check_lock(PROJECT_ROOT / "requirements-dev.txt", PROJECT_ROOT / "requirements-dev.lock")
    runtime = filtered_requirements(PROJECT_ROOT / "requirements.lock")
    dev = {entry.split()[0] for entry in filtered_requirements(PROJECT_ROOT / "requirements-dev.lock")}
    assert runtime and all("==" in entry.split()[0] and "--hash=sha256:" in entry for entry in runtime)
    assert {entry.split()[0] for entry in runtime} <= dev  # the tests run what the Lambda runs


def test_given_a_code_change_when_hashed_then_the_asset_hash_changes_but_caches_do_not(project: Path) -> None:
    before = asset_hash(project, install_dependencies=False)
    (project / "shared" / "__pycache__" / "y.pyc").write_bytes(b"1")
    assert asset_hash(project, install_dependencies=False) == before
    (project / "shared" / "mapping.py").write_text("X = 1\n")
    after = asset_hash(project, install_dependencies=False)
    assert after != before
    assert asset_hash(project, install_dependencies=True) != after


def test_given_bundling_without_dependencies_when_run_then_only_the_code_packages_are_copied(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("asset")
    assert LocalPythonBundling(project, with_dependencies=False).try_bundle(str(out)) is True
    assert sorted(p.name for p in out.iterdir()) == ["functions", "shared"]
    assert not list(out.rglob("__pycache__")) and not list(out.rglob("tests"))


def test_given_the_real_requirements_when_installed_then_the_wheels_are_arm64_cp312_without_boto3() -> None:
    # Uses (and fills) the same .build/ cache as `make synth`: the first run downloads from PyPI,
    # with --require-hashes, so the lock holds the arm64 wheels' hashes.
    deps = install_dependencies(PROJECT_ROOT, BUILD_DIR)
    names = {p.name for p in deps.iterdir()}
    assert {"aws_lambda_powertools", "pydantic", "pydantic_core", "httpx"} <= names
    assert not names & {"boto3", "botocore", "s3transfer", "jmespath", "urllib3"}
    (binary,) = (deps / "pydantic_core").glob("_pydantic_core.*.so")
    assert "cpython-312-aarch64-linux-gnu" in binary.name
    assert _tree_size(deps) < MAX_DEPENDENCIES_BYTES
    assert install_dependencies(PROJECT_ROOT, BUILD_DIR) == deps  # second call: the cache


def test_given_bundling_with_dependencies_when_run_then_code_sits_beside_the_installed_packages(
    tmp_path: Path,
) -> None:
    out = tmp_path / "asset"
    out.mkdir()
    LocalPythonBundling(PROJECT_ROOT, with_dependencies=True).try_bundle(str(out))
    assert (out / "functions" / "__init__.py").is_file() and (out / "shared" / "config.py").is_file()
    assert (out / "pydantic").is_dir() and not (out / "boto3").exists()
    shutil.rmtree(out)
