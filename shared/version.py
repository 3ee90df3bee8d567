"""The product's version: the one place it is written.

``pyproject.toml`` carries the same string (a unit test keeps them equal); the CDK stack puts it in
every function's environment (``APP_VERSION``) and in the stack output ``Version``, so
``python -m cli status`` can say which version a deployed stack runs. Released versions are git
tags ``v<version>`` and are described in ``CHANGELOG.md``.
"""

from __future__ import annotations

from collections.abc import Mapping

VERSION = "0.1.0"
VERSION_ENV = "APP_VERSION"
VERSION_OUTPUT = "Version"


def deployed_version(environment: Mapping[str, str], outputs: Mapping[str, str] | None = None) -> str | None:
    """What a stack runs: its ``Version`` output, else its functions' ``APP_VERSION``; None for a
    stack deployed before either existed."""
    return (outputs or {}).get(VERSION_OUTPUT) or environment.get(VERSION_ENV) or None
