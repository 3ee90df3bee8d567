"""The one Lambda code asset: ``functions/`` + ``shared/`` + the runtime dependencies, without Docker.

Dependencies are installed from ``requirements.lock`` (every transitive package pinned, with the
sha256 of every file PyPI has for that version, the arm64 wheels included; ``make lock`` writes it
from ``requirements.txt``) by a local ``pip install --require-hashes --no-deps --platform
manylinux2014_aarch64 --only-binary=:all:`` (CDK ``ILocalBundling``), so the wheels match the
Lambda arm64 runtime whatever machine synthesises, and a file that differs from the one locked
fails the install. A lock that no longer matches ``requirements.txt`` fails the synth. The install
is cached in ``.build/deps-<hash>`` keyed by the locked entries and the target platform: a
repeated synth copies it instead of downloading.

boto3 and its companions are not bundled: the Lambda Python runtime provides them and they are
most of the size. ``bundle=False`` (``-c bundle=false``) leaves the dependencies out entirely,
for infrastructure tests that only look at the template.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = PROJECT_ROOT / ".build"
CODE_PACKAGES = ("functions", "shared")
PYTHON_VERSION = "3.12"
PLATFORM = "manylinux2014_aarch64"
LOCK_FILE = "requirements.lock"
# Provided by the Lambda Python runtime (boto3 and what it pulls in).
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
)
_IGNORED = ("__pycache__", "*.pyc", "tests", ".mypy_cache", ".pytest_cache")


class BundlingError(RuntimeError):
    """pip could not build the dependency set for the Lambda platform."""


def _requirement_name(line: str) -> str:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    return match.group(1).lower().replace("_", "-").replace(".", "-") if match else ""


def _entries(path: Path) -> list[str]:
    """Requirement entries, continuation lines joined, comments and file-level options dropped."""
    entries: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.endswith("\\"):  # continued on the next line (a lock's --hash options)
            pending = f"{pending} {line[:-1]}"
            continue
        pending = f"{pending} {line}".strip()
        if pending and not pending.startswith("-"):
            entries.append(" ".join(pending.split()))
        pending = ""
    return entries


def filtered_requirements(requirements: Path) -> list[str]:
    """A requirements or lock file's entries (hashes kept) without the runtime-provided packages."""
    return sorted(e for e in _entries(requirements) if _requirement_name(e) not in RUNTIME_PROVIDED)


def _version(entry: str) -> str:
    return entry.split()[0].partition("==")[2]


def check_lock(requirements: Path, lock: Path) -> None:
    """Every pin of ``requirements`` is in ``lock`` at the same version, with hashes."""
    locked = {_requirement_name(e): e for e in _entries(lock)}
    problems = []
    for entry in _entries(requirements):
        pin = entry.split()[0]
        found = locked.get(_requirement_name(entry))
        if found is None or _version(found) != _version(pin) or "--hash=" not in found:
            problems.append(pin)
    if problems:
        raise BundlingError(
            f"{lock.name} does not match {requirements.name} ({', '.join(problems)}): run `make lock`"
        )


def _source_files(root: Path) -> Iterator[Path]:
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            parts = path.relative_to(root).parts
            skipped = any(part in ("__pycache__", "tests", ".mypy_cache", ".pytest_cache") for part in parts)
            if path.is_file() and not skipped and path.suffix != ".pyc":
                yield path


def _deps_key(requirements: list[str]) -> str:
    text = "\n".join([PLATFORM, PYTHON_VERSION, *sorted(RUNTIME_PROVIDED), *requirements])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def asset_hash(root: Path, *, install_dependencies: bool) -> str:
    """Changes whenever the code, the requirements or the bundling mode change (and only then)."""
    digest = hashlib.sha256()
    digest.update(f"deps={install_dependencies}\n".encode())
    digest.update(_deps_key(filtered_requirements(root / LOCK_FILE)).encode())
    for path in _source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _remove_runtime_provided(target: Path) -> None:
    # Transitive dependencies (aws-lambda-powertools -> jmespath) bring some back in.
    for entry in target.iterdir():
        name = entry.name.split("-")[0].lower().replace("_", "-")
        stem = entry.name.lower()
        if name in RUNTIME_PROVIDED or stem in {"dateutil", "six.py"}:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(target / "bin", ignore_errors=True)


def install_dependencies(root: Path = PROJECT_ROOT, build_dir: Path = BUILD_DIR) -> Path:
    """Install the locked requirements for Lambda arm64 once; return the cached directory."""
    check_lock(root / "requirements.txt", root / LOCK_FILE)
    requirements = filtered_requirements(root / LOCK_FILE)
    cached = build_dir / f"deps-{_deps_key(requirements)}"
    if cached.is_dir():
        return cached
    build_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=build_dir, prefix="tmp-") as tmp:
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        target = Path(tmp) / "site"
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--platform", PLATFORM, "--implementation", "cp",
            "--python-version", PYTHON_VERSION, "--only-binary=:all:",
            # The lock lists every package: nothing unlisted, nothing unhashed.
            "--require-hashes", "--no-deps",
            "--target", str(target), "-r", str(req_file),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise BundlingError(f"pip could not install the Lambda dependencies:\n{result.stderr}")
        _remove_runtime_provided(target)
        try:
            target.rename(cached)
        except OSError:
            # Another synth (a parallel test worker) finished first; its copy is identical.
            if not cached.is_dir():
                raise
    return cached


def copy_code(root: Path, output: Path) -> None:
    for package in CODE_PACKAGES:
        shutil.copytree(
            root / package, output / package, ignore=shutil.ignore_patterns(*_IGNORED), dirs_exist_ok=True
        )


@jsii.implements(ILocalBundling)
class LocalPythonBundling:
    """Builds the asset directory on this machine (CDK calls it instead of running Docker)."""

    def __init__(self, root: Path, *, with_dependencies: bool) -> None:
        self._root = root
        self._with_dependencies = with_dependencies

    def try_bundle(
        self, output_dir: str, options: Any = None
    ) -> bool:  # jsii passes the options struct positionally
        output = Path(output_dir)
        if self._with_dependencies:
            shutil.copytree(install_dependencies(self._root), output, dirs_exist_ok=True)
        copy_code(self._root, output)
        return True


def lambda_code(root: Path = PROJECT_ROOT, *, with_dependencies: bool = True) -> lambda_.Code:
    """The code asset every function shares (handlers differ, the package is the same)."""
    return lambda_.Code.from_asset(
        str(root),
        asset_hash_type=AssetHashType.CUSTOM,
        # Our own hash: CDK would otherwise fingerprint the whole repository (.venv included).
        asset_hash=asset_hash(root, install_dependencies=with_dependencies),
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises. CDK requires an image.
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
            # jsii hands tryBundle's options over positionally, which the typed Protocol cannot express.
            local=cast(ILocalBundling, LocalPythonBundling(root, with_dependencies=with_dependencies)),
        ),
    )
