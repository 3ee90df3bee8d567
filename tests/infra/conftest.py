"""Synthesise the app the way ``app.py`` does (cdk.json context, cdk-nag on), without pip."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

import app as cdk_app
from infra.config import CLIENTS_DIR, ClientConfig, load_client_config
from infra.stack import IntegrationStack


@dataclass(frozen=True)
class Synthesised:
    config: ClientConfig
    stack: IntegrationStack
    template: Template
    raw: dict[str, Any]
    outdir: Path

    def resources(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.raw["Resources"].items() if v["Type"] == type_name}

    def only(self, type_name: str) -> dict[str, Any]:
        (resource,) = self.resources(type_name).values()
        return resource


def synthesise(client: str, outdir: Path, clients_dir: Path = CLIENTS_DIR) -> Synthesised:
    """Full synthesis, validation plugins included: a cdk-nag finding raises here."""
    args = ["-c", f"client={client}", "-c", "bundle=false", "-c", f"clients_dir={clients_dir}"]
    app = App(context=cdk_app._context(args), outdir=str(outdir))
    stack = cdk_app.build(app)
    assembly = app.synth()
    path = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
    raw = json.loads(path.read_text())
    return Synthesised(load_client_config(client, clients_dir), stack, Template.from_json(raw), raw, outdir)


def synthesise_variant(tmp_path: Path, runtime: dict[str, Any]) -> Synthesised:
    """clients/example.json with ``runtime`` merged into its runtime section (a nested object
    into the one it names), synthesised as client "variant" from ``tmp_path``."""
    data = json.loads((CLIENTS_DIR / "example.json").read_text())
    for section, values in runtime.items():
        current = data["runtime"].get(section)
        merge = isinstance(current, dict) and isinstance(values, dict)
        data["runtime"][section] = {**current, **values} if merge else values
    (tmp_path / "variant.json").write_text(json.dumps(data))
    return synthesise("variant", tmp_path / "out", clients_dir=tmp_path)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    """clients/example.json, synthesised once per test process (the modules that use it share
    the xdist group "infra", so one worker pays for it once)."""
    return synthesise("example", tmp_path_factory.mktemp("cdk.out"))
