"""``make audit``: known vulnerabilities in every locked package, or a clear reason why not.

pip-audit asks PyPI's JSON API (the advisories PyPI publishes for each release) about every pinned
version in ``requirements-dev.lock``, which holds the runtime lock too, without installing anything
(``--disable-pip --require-hashes``). Some networks answer PyPI's simple index, which is all pip
needs, but not its JSON API (a mirror or a proxy), or nothing at all. So a probe first asks the JSON
API about one locked release: when that cannot answer, the audit is skipped with the reason and
exits 0, and a machine without the service does not fail ``make test``; where it answers, a known
vulnerability fails the build. To accept a finding, add its id to ``IGNORED`` with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements-dev.lock"
PROBE_LOCK = ROOT / "requirements.lock"
JSON_API = "https://pypi.org/pypi/{name}/{version}/json"
# Vulnerability id -> why it does not apply to this product.
IGNORED: dict[str, str] = {}


def _first_pin(lock: Path) -> tuple[str, str]:
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#", "-")) and "==" in line:
            name, _, rest = line.partition("==")
            return name.strip(), rest.split()[0]
    raise SystemExit(f"make audit: {lock.name} pins nothing")


def unavailable_reason(timeout: float = 10.0) -> str | None:
    """None when PyPI's JSON API answers with vulnerability data, else why not."""
    name, version = _first_pin(PROBE_LOCK)
    url = JSON_API.format(name=name, version=version)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https URL
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return f"PyPI's JSON API answered HTTP {exc.code} for {name} {version} (an index mirror without it?)"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return f"PyPI's JSON API cannot be reached ({getattr(exc, 'reason', exc)})"
    except ValueError:
        return "PyPI's JSON API answered something that is not JSON"
    if "vulnerabilities" not in body:
        return "PyPI's JSON API answered without vulnerability data"
    return None


def main() -> int:
    reason = unavailable_reason()
    if reason is not None:
        sys.stdout.write(f"make audit: SKIPPED, no vulnerability service here: {reason}.\n")
        return 0
    command = [
        str(Path(sys.executable).parent / "pip-audit"),
        "--requirement", str(LOCK), "--require-hashes", "--disable-pip",
        "--vulnerability-service", "pypi", "--progress-spinner", "off",
    ]  # fmt: skip
    for vulnerability in IGNORED:
        command += ["--ignore-vuln", vulnerability]
    return subprocess.run(command, check=False).returncode  # noqa: S603 - our own arguments


if __name__ == "__main__":
    sys.exit(main())
