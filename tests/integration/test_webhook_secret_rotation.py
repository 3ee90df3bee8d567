"""Rotating the Ignition webhook secret with the CLI: no delivery is refused at any point."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parameters import clear_caches

from cli.errors import Exit
from sandbox.environment import WEBHOOK_SECRET, Sandbox
from shared import aws
from shared.ignition.webhook import sign_webhook
from tests.integration.conftest import World
from tests.integration.test_cli_support import run_cli, write_sandbox_file

pytestmark = pytest.mark.integration


@pytest.fixture
def secret_id(sandbox: Sandbox) -> Iterator[str]:
    """The sandbox's webhook secret, restored to its plain value afterwards (other tests sign with it)."""
    assert sandbox.resources is not None
    secret_id = sandbox.resources.ignition_webhook_secret
    yield secret_id
    aws.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=WEBHOOK_SECRET)
    clear_caches()  # type: ignore[no-untyped-call]


def test_given_a_rotation_with_the_cli_when_ignition_signs_with_the_old_then_the_new_secret_then_all_land(
    world: World, sandbox: Sandbox, secret_id: str, tmp_path: Path
) -> None:
    # Given the operator stores a new webhook secret with the CLI,
    new_secret = uuid.uuid4().hex + uuid.uuid4().hex
    (tmp_path / "new-secret.txt").write_text(new_secret + "\n", encoding="utf-8")
    sandbox_file = write_sandbox_file(sandbox, tmp_path / "sandbox.json")
    run = run_cli(
        "rotate-webhook-secret",
        "--secret-file",
        str(tmp_path / "new-secret.txt"),
        "--json",
        sandbox_file=sandbox_file,
    )
    assert run.code == Exit.OK, run.stderr
    assert new_secret not in run.stdout and WEBHOOK_SECRET not in run.stdout
    stored = json.loads(aws.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    assert stored["current"] == new_secret and stored["previous"] == WEBHOOK_SECRET
    clear_caches()  # type: ignore[no-untyped-call]  # as after 5 minutes: every ingest re-read it

    # When Ignition still signs with the old secret (the emulator's), and then with the new one,
    old_slug, new_slug = world.slug("old-secret"), world.slug("new-secret")
    world.put_client(world.client(old_slug))
    world.put_client(world.client(new_slug), deliver=False)  # in Ignition; its webhook is sent below
    body = json.dumps(
        {
            "id": f"evt_{new_slug}",
            "type": "client.created",
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": world.client(new_slug),
        }
    ).encode()
    new_signed = world.post_webhook(body, sign_webhook(body, new_secret, sandbox.webhook))
    forged = world.post_webhook(body, sign_webhook(body, "not-either-secret", sandbox.webhook))
    world.settle()

    # Then both deliveries are accepted and both clients are in Xero; anything else is still refused.
    assert new_signed.status_code == 202 and forged.status_code == 401
    assert len(world.contacts(ContactNumber=old_slug)) == 1
    assert len(world.contacts(ContactNumber=new_slug)) == 1

    # ... and a second rotation inside the overlap is refused (it would drop a secret still in use).
    (tmp_path / "third.txt").write_text(uuid.uuid4().hex, encoding="utf-8")
    again = run_cli(
        "rotate-webhook-secret", "--secret-file", str(tmp_path / "third.txt"), sandbox_file=sandbox_file
    )
    assert again.code == Exit.USAGE and "overlap" in again.stderr
