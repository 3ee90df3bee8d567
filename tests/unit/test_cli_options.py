"""The CLI refuses options it cannot honour, naming the values it accepts; ``--json`` errors are a
JSON document on stdout; a stale sandbox file is one readable line and the documented exit code."""

from __future__ import annotations

import io
import json
import re
import socket
from pathlib import Path

import pytest

from cli import options
from cli.app import build_parser, main
from cli.errors import Exit

REPO = Path(__file__).resolve().parents[2]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# (arguments, text the error must show: the valid values or range)
REFUSED = [
    (["replay", "dlq", "--limit", "-5"], "from 1 to 100000"),
    (["replay", "dlq", "--limit", "many"], "from 1 to 100000"),
    (["replay", "archive", "--from", "2026-11-01T00:00Z", "--limit", "0"], "from 1 to 100000"),
    (["replay", "dlq", "--category", "nonsense"], "xero_validation"),
    (["replay", "dlq", "--type", "clients"], "'client', 'invoice', 'payment'"),
    (["replay", "archive", "--from", "yesterday"], "not an ISO-8601 time"),
    (["backfill", "--max-calls", "0"], "from 1 up"),
    (["backfill", "--max-calls", "-3"], "from 1 up"),
    (["backfill", "--phases", "x"], "choose from clients, invoices, payments"),
    (["backfill", "--phases", ","], "choose from clients, invoices, payments"),
    (["reconcile", "--timeout", "-1"], "seconds from 1 to 86400"),
    (["reconcile", "--timeout", "nan"], "seconds from 1 to 86400"),
    (["doctor", "--invoices", "-1"], "from 0 up"),
    (["connect", "xero", "--timeout", "0"], "seconds from 1 to 86400"),
    (["connect", "ignition", "--timeout", "soon"], "seconds from 1 to 86400"),
]


@pytest.mark.parametrize(("argv", "valid"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_given_an_invalid_option_when_run_then_usage_exit_2_naming_the_valid_values(
    argv: list[str], valid: str, tmp_path: Path
) -> None:
    # A target that cannot be reached: an option let through would end in exit 4, not 2.
    code, out, err = run(*argv, "--sandbox", "--sandbox-file", str(tmp_path / "none.json"))

    assert code == Exit.USAGE
    assert valid in err
    assert "usage: python -m cli" in err and out == ""


def test_given_an_invalid_option_with_json_when_run_then_the_error_is_json_on_stdout(tmp_path: Path) -> None:
    code, out, err = run("replay", "dlq", "--limit", "-5", "--json", "--sandbox")

    assert code == Exit.USAGE
    error = json.loads(out)["error"]
    assert error["exit_code"] == Exit.USAGE and "from 1 to 100000" in error["message"]
    assert "from 1 to 100000" in err  # people still read it on stderr


def test_given_phases_by_either_name_when_parsed_then_they_run_in_order() -> None:
    parser = build_parser()

    chosen = parser.parse_args(["backfill", "--sandbox", "--phases", "payments,clients"]).phases
    alias = parser.parse_args(["backfill", "--sandbox", "--phases", "contacts"]).phases
    default = parser.parse_args(["backfill", "--sandbox"]).phases

    assert chosen == ("contacts", "payments")
    assert alias == ("contacts",)
    assert default == ("contacts", "invoices", "payments")


def test_given_the_sync_source_then_every_dead_letter_category_is_one_replay_accepts() -> None:
    """A category the sync can write but ``--category`` refused could never be replayed alone."""
    written: set[str] = set()
    for path in [*(REPO / "functions").rglob("*.py"), *(REPO / "shared").rglob("*.py")]:
        if "reconcile" in path.parts:  # the reconciliation's report categories, not dead letters
            continue
        written |= set(re.findall(r'category="([a-z_]+)"', path.read_text(encoding="utf-8")))

    assert written and written <= set(options.DEAD_LETTER_CATEGORIES)


def test_given_no_sandbox_file_with_json_when_status_then_exit_4_and_a_json_error(tmp_path: Path) -> None:
    code, out, err = run("status", "--sandbox", "--sandbox-file", str(tmp_path / "missing.json"), "--json")

    assert code == Exit.CONFIG
    error = json.loads(out)["error"]
    assert error["exit_code"] == Exit.CONFIG and "python -m sandbox serve" in error["hint"]
    assert "does not exist" in err


def test_given_a_stale_sandbox_file_when_status_then_exit_4_in_one_readable_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    file = tmp_path / "sandbox.json"
    file.write_text(
        json.dumps(
            {
                "webhook_url": f"http://127.0.0.1:{port}/webhook",
                "xero_url": f"http://127.0.0.1:{port}/xero",
                "ignition_url": f"http://127.0.0.1:{port}/ignition",
                "aws_endpoint_url": f"http://127.0.0.1:{port}",
                "environment": {},
            }
        ),
        encoding="utf-8",
    )

    code, out, err = run("status", "--sandbox", "--sandbox-file", str(file), "--no-colour")

    assert code == Exit.CONFIG
    assert out == ""
    first, *rest = err.strip().splitlines()
    assert first.startswith("error: the sandbox in") and "is not running" in first and "stale" in first
    assert "Traceback" not in err and len(rest) == 1 and rest[0].startswith("hint:")


def test_given_a_long_replay_when_it_counts_then_progress_lines_go_to_stderr_every_two_seconds() -> None:
    from cli.output import Ticker

    now = [0.0]
    stream = io.StringIO()
    tick = Ticker(stream, "replay", every=2.0, clock=lambda: now[0])

    for read in range(1, 11):  # one message a second
        now[0] += 1.0
        tick(read, read - 1)

    assert stream.getvalue().splitlines() == [
        f"replay: {n:,} read, {n - 1:,} so far" for n in (2, 4, 6, 8, 10)
    ]


def test_given_a_quick_replay_then_no_progress_line() -> None:
    from cli.output import Ticker

    stream = io.StringIO()
    tick = Ticker(stream, "replay", every=2.0, clock=lambda: 0.5)
    tick(3, 3)

    assert stream.getvalue() == ""
