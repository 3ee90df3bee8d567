"""``status --all`` against deployed stacks, with moto's in-process AWS as the firms' account: the
version comes from the stack's ``Version`` output (CloudFormation ``describe_stacks``), the
settings from the sync function's environment, and a firm without a stack is one line."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from cli.fleet import collect_fleet, render, stack_resolver
from cli.output import Output
from shared import aws

SETTINGS = {
    "CLIENT_NAME": "acme",
    "STATE_TABLE_NAME": "acme-state",
    "IDEMPOTENCY_TABLE_NAME": "acme-idempotency",
    "ARCHIVE_BUCKET_NAME": "acme-archive",
    "SYNC_QUEUE_URL": "https://sqs.ap-southeast-2.amazonaws.com/123456789012/acme-sync.fifo",
    "DLQ_URL": "https://sqs.ap-southeast-2.amazonaws.com/123456789012/acme-dlq.fifo",
    "XERO_CLIENT_SECRET_ID": "ignition-xero-sync/acme/xero-client",
    "XERO_TOKEN_SECRET_ID": "ignition-xero-sync/acme/xero-token",
    "IGNITION_WEBHOOK_SECRET_ID": "ignition-xero-sync/acme/ignition-webhook",
    "IGNITION_API_SECRET_ID": "ignition-xero-sync/acme/ignition-api",
    # What an older build of the functions said; the stack output is what was deployed last.
    "APP_VERSION": "0.0.1",
}


def _deploy_acme() -> None:
    """What `cdk deploy -c client=acme` leaves that the CLI reads: the stack's outputs and the
    sync function's environment."""
    role = aws.client("iam").create_role(
        RoleName="acme-sync-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    aws.client("lambda").create_function(
        FunctionName="acme-sync",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": SETTINGS},
    )
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "Version": {"Value": "0.0.2"},
            "SyncFunctionName": {"Value": "acme-sync"},
        },
    }
    aws.client("cloudformation").create_stack(
        StackName="IgnitionXeroSync-acme", TemplateBody=json.dumps(template)
    )


def test_given_a_stack_and_a_firm_without_one_when_status_all_then_version_from_its_output_and_one_line(
    tmp_path: Path, aws_each: None
) -> None:
    for name in ("acme", "gone"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"region": "ap-southeast-2"}), encoding="utf-8")
    _deploy_acme()

    report = collect_fleet(tmp_path, stack_resolver(tmp_path))
    text = render(report, Output(json_mode=False, stdout=io.StringIO(), stderr=io.StringIO(), colour=False))

    acme, gone = report["firms"]
    assert acme["client"] == "acme" and acme["reachable"] is True
    assert acme["version"] == "0.0.2"  # the stack output, read through describe_stacks
    # Nothing else of acme exists in this account: unreadable, so not healthy, never "healthy".
    assert acme["healthy"] is False and any("unreadable" in p for p in acme["problems"])
    assert gone["reachable"] is False
    assert "cannot read stack IgnitionXeroSync-gone in ap-southeast-2" in gone["problems"][0]
    assert report["unhealthy"] == ["acme", "gone"]
    (gone_line,) = [line for line in text.splitlines() if line.startswith("gone")]
    assert "UNREACHABLE" in gone_line
