"""What one client's stack contains, read from the synthesised CloudFormation template (the fixed
monthly items of the cost model: secrets, alarms, dashboards, KMS keys, schedules, functions).

Synthesises ``clients/example.json`` without bundling in a child process (as tests/infra does);
when that fails (no Node.js, infra mid-edit) it says so and the cost uses ``FALLBACK``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from typing import Any

from bench.core import REPO_ROOT

CHILD = r"""
import json, os, sys, tempfile
from pathlib import Path
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
from aws_cdk import App
import app as cdk_app
with tempfile.TemporaryDirectory() as out:
    application = App(context=cdk_app._context(["-c", "client=example", "-c", "bundle=false"]), outdir=out)
    stack = cdk_app.build(application)
    assembly = application.synth()
    path = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
    print(path.read_text())
"""

# clients/example.json as of this commit; used only when synthesis fails.
FALLBACK: dict[str, Any] = {
    "source": "fallback (synthesis failed)",
    "secrets": 5,
    "alarms": 10,
    "dashboards": 1,
    "kms_keys": 1,
    "functions": {"Ingest": 256, "Sync": 512, "XeroWebhook": 256, "Reconcile": 1024, "Poll": 256},
    "schedules": [
        {"expression": "cron(0 16 * * ? *)", "mode": "full"},
        {"expression": "rate(1 hour)", "mode": "incremental"},
        {"expression": "rate(15 minutes)", "mode": "xero_events"},
        {"expression": "rate(2 minutes)", "mode": "poll"},
    ],
    "log_retention_days": [90],
}


def summarise(template: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, dict[str, Any]] = template.get("Resources", {})
    types = Counter(r["Type"] for r in resources.values())
    functions = {
        logical: int(r["Properties"].get("MemorySize", 128))
        for logical, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    schedules = []
    for r in resources.values():
        if r["Type"] != "AWS::Events::Rule" or "ScheduleExpression" not in r["Properties"]:
            continue
        mode = "full"  # no input: the reconcile function's configured default mode
        for target in r["Properties"].get("Targets", []):
            if isinstance(target.get("Input"), str):
                mode = json.loads(target["Input"]).get("mode", mode)
            arn = target.get("Arn")
            target_id = arn["Fn::GetAtt"][0] if isinstance(arn, dict) and "Fn::GetAtt" in arn else ""
            if target_id in functions and "poll" in target_id.lower():
                mode = "poll"  # the Ignition poller's schedule, not a reconciliation
        schedules.append({"expression": r["Properties"]["ScheduleExpression"], "mode": mode})
    retention = sorted(
        {
            int(r["Properties"]["RetentionInDays"])
            for r in resources.values()
            if r["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" in r.get("Properties", {})
        }
    )
    return {
        "source": "synthesised clients/example.json",
        "secrets": types["AWS::SecretsManager::Secret"],
        "alarms": types["AWS::CloudWatch::Alarm"] + types["AWS::CloudWatch::CompositeAlarm"],
        "dashboards": types["AWS::CloudWatch::Dashboard"],
        "kms_keys": types["AWS::KMS::Key"],
        "functions": functions,
        "schedules": schedules,
        "log_retention_days": retention,
        "resource_types": dict(sorted(types.items())),
    }


def read() -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for key in ("AWS_ENDPOINT_URL",):  # synthesis is offline; keep the sandbox's endpoint out of it
        env.pop(key, None)
    try:
        out = subprocess.run(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", CHILD],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {**FALLBACK, "error": "synthesis timed out"}
    if out.returncode != 0:
        return {**FALLBACK, "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    text = out.stdout
    start = text.find("{")
    try:
        return summarise(json.loads(text[start:]))
    except ValueError as exc:
        return {**FALLBACK, "error": f"unreadable template: {exc}"}
