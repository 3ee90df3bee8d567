"""``report --latest``: the last reconciliation's summary and a link to its HTML report that opens
without AWS access, signed now with the caller's own credentials (so a link in an old e-mail that
expired with the function's credentials is never the only way in); ``--download DIR`` saves the
HTML, CSV and JSON; ``--open`` opens the HTML in a browser (from a downloaded copy, so it opens
whatever the link's fate).
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cli.errors import CliError, Exit
from cli.output import Output
from cli.status import latest_reconciliation
from cli.target import Target
from shared.reconcile.adapters import S3Artifacts
from shared.reconcile.model import CATEGORIES, CATEGORY_ORDER
from shared.reconcile.report import local_time

KINDS = ("html", "csv", "json")


def add_parser(commands: Any, common: argparse.ArgumentParser, epilog: str) -> None:
    parser = commands.add_parser(
        "report",
        parents=[common],
        help="the last reconciliation's report: summary, a link anyone can open, download or open it",
        description="Prints the last reconciliation's summary and a presigned link to its HTML report "
        "(opens without AWS access; valid reconcile.report_link_hours, or less when your AWS "
        "credentials are temporary: the link dies with them). --download saves the HTML, CSV and JSON; "
        "--open opens the HTML in the browser.",
        epilog=epilog,
    )
    parser.add_argument("--latest", action="store_true", required=True, help="the last run (required)")
    parser.add_argument("--download", type=Path, metavar="DIR", help="save report.html, .csv and .json here")
    parser.add_argument("--open", action="store_true", help="open the HTML report in a browser")


def run(args: argparse.Namespace, target: Target, out: Output, opener: Any) -> int:
    latest = latest_reconciliation(target.settings.state_table)
    report = (latest or {}).get("report")
    if latest is None or not isinstance(report, dict) or not report.get("html"):
        out.result(
            {"latest": None}, lambda: "No reconciliation report yet: run python -m cli reconcile --now"
        )
        return int(Exit.OK)
    rules = target.config.reconcile
    store = S3Artifacts(target.settings.archive_bucket)
    hours = rules.report_link_hours
    link = store.link(str(report["html"]), hours * 3600)
    document: dict[str, Any] = {
        "latest": latest,
        "link": link,
        "link_expires_at": (datetime.now(UTC) + timedelta(hours=hours)).isoformat(),
    }
    saved: dict[str, str] = {}
    if args.download is not None or args.open:
        folder = args.download or Path(tempfile.mkdtemp(prefix="reconciliation-"))
        saved = _download(store, report, folder / str(latest.get("run_id", "latest")))
        document["downloaded"] = saved
    if args.open:
        opener(Path(saved["html"]).resolve().as_uri())
    out.result(document, lambda: summary_text(latest, link, hours, saved, ZoneInfo(rules.time_zone)))
    return int(Exit.OK)


def _download(store: S3Artifacts, report: dict[str, Any], folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    saved: dict[str, str] = {}
    for kind in KINDS:
        key = report.get(kind)
        if not key:
            continue
        path = folder / f"report.{kind}"
        if not store.get_file(str(key), path):
            raise CliError(f"the report's {kind} file {key} is not in the archive bucket", Exit.ERROR)
        saved[kind] = str(path)
    return saved


def summary_text(latest: dict[str, Any], link: str, hours: int, saved: dict[str, str], zone: ZoneInfo) -> str:
    started = local_time(str(latest.get("started_at", "")), zone)
    lines = [
        f"Reconciliation {latest.get('run_id', '?')} ({latest.get('mode', '?')}), {started}: "
        f"{latest.get('status', '?')}",
        f"{latest.get('needs_person', 0)} item(s) need a person; "
        f"{latest.get('healed', 0)} re-queued for the sync.",
    ]
    summary = latest.get("summary") or {}
    for category in CATEGORY_ORDER:
        if summary.get(category):
            lines.append(f"  {CATEGORIES[category][0]}: {summary[category]}")
    lines += [
        "",
        f"Report (opens without AWS access, for up to {hours} hours or until your AWS session ends):",
        link,
    ]
    for kind, path in saved.items():
        lines.append(f"Saved {kind}: {path}")
    return "\n".join(lines)
