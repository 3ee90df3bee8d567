#!/usr/bin/env python3
"""CDK entry point: one IntegrationStack for the client named with ``-c client=NAME``.

npx aws-cdk@2 deploy -c client=acme            # clients/acme.json
CDK_OUTDIR=cdk.out python app.py -c client=example   # synth without the CDK CLI
... -c bundle=false                            # skip pip (infrastructure tests)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# Node 20 works; jsii's end-of-life banner would drown the synth output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Tags

from infra.bundling import lambda_code
from infra.config import CLIENTS_DIR, ConfigError, load_client_config
from infra.nag import add_security_checks
from infra.stack import IntegrationStack


def _context(argv: list[str]) -> dict[str, Any]:
    """cdk.json's context plus ``-c key=value`` pairs, for runs without the CDK CLI.

    The CLI passes both itself (CDK_CONTEXT_JSON); reading them here too makes
    ``python app.py -c client=x`` synthesise exactly what ``cdk synth -c client=x`` does.
    """
    context: dict[str, Any] = json.loads((Path(__file__).parent / "cdk.json").read_text())["context"]
    args = iter(argv)
    for arg in args:
        pair = next(args, "") if arg in ("-c", "--context") else arg.removeprefix("--context=")
        if "=" in pair and (arg in ("-c", "--context") or arg.startswith("--context=")):
            key, value = pair.split("=", 1)
            context[key] = value
    return context


def _flag(app: App, key: str, default: bool) -> bool:
    value = app.node.try_get_context(key)
    if value is None:
        return default
    return str(value).lower() not in ("false", "0", "no", "off")


def build(app: App) -> IntegrationStack:
    clients_dir = app.node.try_get_context("clients_dir")
    config = load_client_config(
        app.node.try_get_context("client"), Path(clients_dir).resolve() if clients_dir else CLIENTS_DIR
    )
    stack = IntegrationStack(
        app, config=config, code=lambda_code(with_dependencies=_flag(app, "bundle", True))
    )
    Tags.of(stack).add("project", "ignition-xero-sync")
    Tags.of(stack).add("client", config.name)
    add_security_checks(app)
    return stack


def main() -> None:
    app = App(context=_context(sys.argv[1:]))
    try:
        build(app)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    app.synth()


if __name__ == "__main__":
    main()
