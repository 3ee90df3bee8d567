"""``status --all``: one line per firm, for the engineer who runs many.

Every ``clients/<name>.json`` (except the ``example``) is one firm with its own stack; each is read
as ``status --client NAME`` reads it (same settings, same checks), one after the other. A firm
that cannot be reached (no credentials for its account, no stack, a missing sandbox file) gives
one line saying why, and the run goes on with the next.

With ``--sandbox``, firm NAME is the local sandbox described by ``<clients-dir>/NAME.sandbox.json``
(the file ``python -m sandbox serve`` writes): the fleet view tried locally, and tested.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cli.errors import CliError, Exit
from cli.output import Output, ago
from cli.status import collect_status
from cli.target import REPO_ROOT, Target, sandbox_target, stack_target

CLIENTS_DIR = REPO_ROOT / "clients"
SANDBOX_SUFFIX = ".sandbox.json"
PROBLEM_WIDTH = 90  # the whole list is in --json and in status --client NAME
TEMPLATE_CLIENT = "example"  # clients/example.json is the template new firms copy, not a firm

Resolver = Callable[[str], Target]


def firm_names(clients_dir: Path) -> list[str]:
    names = sorted(
        path.name.removesuffix(".json")
        for path in clients_dir.glob("*.json")
        if not path.name.endswith(SANDBOX_SUFFIX) and path.stem != TEMPLATE_CLIENT
    )
    if not names:
        raise CliError(
            f"no firms: {clients_dir} has no <name>.json besides {TEMPLATE_CLIENT}.json",
            Exit.CONFIG,
            hint="add one per firm (docs/deploy.md), or pass --clients-dir",
        )
    return names


def stack_resolver(clients_dir: Path) -> Resolver:
    def resolve(name: str) -> Target:
        try:
            region = json.loads((clients_dir / f"{name}.json").read_text(encoding="utf-8")).get("region")
        except (OSError, ValueError, AttributeError):
            raise CliError(f"{clients_dir / name}.json is not readable JSON", Exit.CONFIG) from None
        return stack_target(name, region if isinstance(region, str) else None)

    return resolve


def sandbox_resolver(clients_dir: Path) -> Resolver:
    def resolve(name: str) -> Target:
        return sandbox_target(clients_dir / f"{name}{SANDBOX_SUFFIX}")

    return resolve


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def firm_line(name: str, resolve: Resolver, now: datetime) -> dict[str, Any]:
    line: dict[str, Any] = {
        "client": name,
        "reachable": False,
        "healthy": False,
        "version": None,
        "last_webhook": None,
        "last_poll": None,
        "last_reconciliation": None,
        "needs_person": None,
        "dead_letters": None,
        "problems": [],
    }
    try:
        report = collect_status(resolve(name), now)
    except CliError as exc:
        line["problems"] = [f"unreachable: {exc}"]
        return line
    except (ClientError, BotoCoreError) as exc:  # credentials or a denied call half-way
        line["problems"] = [f"unreachable: {type(exc).__name__}: {exc}"]
        return line
    reconciliation = report.get("reconciliation") or None
    line.update(
        {
            "reachable": True,
            "healthy": report["healthy"],
            "version": report.get("version"),
            "last_webhook": report["webhooks"]["last_received"],
            "last_poll": report.get("poll", {}).get("last_run"),
            "dead_letters": report["dead_letters"].get("count"),
            "problems": report["problems"],
        }
    )
    if reconciliation is not None:
        line["last_reconciliation"] = {
            "run_id": reconciliation.get("run_id"),
            "status": reconciliation.get("status"),
            "finished_at": _when(reconciliation.get("finished_at")),
        }
        needs = reconciliation.get("needs_person")
        line["needs_person"] = int(needs) if isinstance(needs, int | float) else None
    return line


def collect_fleet(clients_dir: Path, resolve: Resolver, now: datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    firms = [firm_line(name, resolve, moment) for name in firm_names(clients_dir)]
    return {
        "checked_at": moment,
        "clients_dir": str(clients_dir),
        "healthy": all(firm["healthy"] for firm in firms),
        "unhealthy": [firm["client"] for firm in firms if not firm["healthy"]],
        "firms": firms,
    }


def render(report: dict[str, Any], out: Output) -> str:
    now: datetime = report["checked_at"]
    rows: list[list[Any]] = []
    for firm in report["firms"]:
        if not firm["reachable"]:
            # One readable line: the firm, and why it could not be read.
            reason = firm["problems"][0].removeprefix("unreachable: ")
            rows.append([firm["client"], "", out.style("UNREACHABLE", "bad"), reason])
            continue
        health = out.style("healthy", "ok") if firm["healthy"] else out.style("NEEDS ATTENTION", "bad")
        reconciliation = firm["last_reconciliation"]
        reconciled = (
            "never"
            if reconciliation is None
            else f"{reconciliation['status']} {ago(reconciliation['finished_at'], now)}"
            f", {firm['needs_person'] if firm['needs_person'] is not None else '?'} need a person"
        )
        dead = firm["dead_letters"]
        detail = [
            f"webhook {ago(firm['last_webhook'], now)}",
            f"poll {ago(firm['last_poll'], now)}",
            f"reconciled {reconciled}",
            f"DLQ {dead if dead is not None else '?'}",
        ]
        if firm["problems"]:
            first = firm["problems"][0]
            first = first if len(first) <= PROBLEM_WIDTH else first[: PROBLEM_WIDTH - 1] + "…"
            detail.append(f"{len(firm['problems'])} problem(s), first: {first}")
        rows.append([firm["client"], firm["version"] or "unknown", health, "; ".join(detail)])
    bad = report["unhealthy"]
    verdict = (
        out.style(f"all {len(rows)} firms healthy", "ok")
        if not bad
        else out.style(f"{len(bad)} of {len(rows)} firms need attention: {', '.join(bad)}", "bad")
    )
    return "\n".join(
        [
            f"{verdict}  ({now:%Y-%m-%d %H:%M:%S} UTC)",
            out.table(["firm", "version", "health", "detail"], rows),
            "",
            "Details of one firm: python -m cli status --client NAME",
        ]
    )
