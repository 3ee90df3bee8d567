"""``python -m cli``: operate one client's Ignition -> Xero integration.

Every command acts on a deployed stack (``--client NAME``) or on the local sandbox (``--sandbox``),
prints for people (or one JSON document with ``--json``), and exits with a code scripts can rely
on (see ``cli.errors.Exit``): 0 ok, 1 error, 2 usage, 3 problems found, 4 target unreachable,
5 authorisation, 6 paused (resumable), 130 interrupted.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import logging
import sys
import textwrap
import webbrowser
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

import httpx
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from cli import connect, fleet, options, pause, replay, status, webhook_secret
from cli.backfill_cmd import render as render_backfill
from cli.backfill_cmd import result_document, run_backfill
from cli.doctor import DEFAULT_INVOICE_SAMPLE, run_doctor
from cli.errors import CliError, Exit
from cli.oauth_flow import DEFAULT_REDIRECT_URI
from cli.output import Output, ProgressBar, Ticker, ago, duration
from cli.reconcile import run_reconciliation
from cli.report import add_parser as add_report_parser
from cli.report import run as run_report
from cli.target import Target, resolve
from shared.backfill import BackfillOptions, BackfillPaused, ProgressUpdate
from shared.store.checkpoints import PHASES
from shared.version import VERSION

Opener = Callable[[str], None]
DOCTOR_DETAIL_WIDTH = 70
DOCTOR_ACTION_WIDTH = 50
Asker = Callable[[list[dict[str, Any]]], int]

EPILOG = """exit codes: 0 ok | 1 error | 2 usage | 3 problems found (unhealthy, records failed) |
4 target unreachable (no sandbox, stack, secret) | 5 authorisation (consent, redirect URI, scopes,
invalid_grant) | 6 paused, resumable (Xero budget spent, --max-calls) | 130 interrupted"""


# --- arguments ---------------------------------------------------------------------------------


class UsageError(Exception):
    """argparse refused the arguments; ``main`` says so (as JSON too with ``--json``)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def _target_options() -> _Parser:
    parent = _Parser(add_help=False)
    where = parent.add_argument_group("target (one of)")
    choice = where.add_mutually_exclusive_group()
    choice.add_argument("--client", metavar="NAME", help="the deployed stack IgnitionXeroSync-NAME")
    choice.add_argument(
        "--sandbox", action="store_true", help="the local sandbox (`python -m sandbox serve`)"
    )
    where.add_argument(
        "--region", help="AWS region of the stack (default: clients/NAME.json, then AWS_REGION)"
    )
    where.add_argument(
        "--sandbox-file", type=Path, help="the sandbox's JSON file (default: .sandbox.json at the repo root)"
    )
    shown = parent.add_argument_group("output")
    shown.add_argument("--json", action="store_true", help="print one JSON document for scripts")
    shown.add_argument(
        "--no-colour", "--no-color", dest="no_colour", action="store_true", help="no ANSI colour"
    )
    shown.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    return parent


def _oauth_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redirect-uri",
        default=DEFAULT_REDIRECT_URI,
        help=f"the app's registered redirect URI on localhost (default {DEFAULT_REDIRECT_URI})",
    )
    parser.add_argument(
        "--open", action="store_true", help="open the authorisation URL in the default browser"
    )
    parser.add_argument(
        "--timeout",
        type=options.seconds(1, 86_400),
        default=300.0,
        help="seconds to wait for the browser (default 300)",
    )
    parser.add_argument(
        "--credentials-file",
        type=Path,
        help='JSON {"client_id", "client_secret"} of the app: stored in the credentials secret first',
    )
    parser.add_argument(
        "--paste",
        action="store_true",
        help="the admin consents on another computer: print the URL to send them, then read the address "
        "their browser ends on (pasted here, or one line on standard input); used by itself when nothing "
        "can listen on the redirect URI",
    )
    parser.add_argument(
        "--no-preflight",
        dest="preflight",
        action="store_false",
        help="skip the check of the authorisation URL",
    )


def build_parser() -> argparse.ArgumentParser:
    common = _target_options()
    parser = _Parser(
        prog="python -m cli",
        description="Operate one client's Ignition -> Xero integration.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        group: argparse._SubParsersAction[_Parser], name: str, *, help: str, description: str
    ) -> _Parser:
        """A subcommand with the common target options and the shared epilog."""
        return group.add_parser(name, parents=[common], help=help, description=description, epilog=EPILOG)

    connect_parser = commands.add_parser("connect", help="authorise Xero or Ignition and store the tokens")
    providers = connect_parser.add_subparsers(dest="provider", required=True, metavar="PROVIDER")
    xero = command(
        providers,
        "xero",
        help="OAuth with a local redirect listener (PKCE), or a Custom Connection",
        description="Authorise the Xero organisation and store the token set (with its tenant id) in the "
        "stack's xero-token secret. Prints the URL a Xero admin opens.",
    )
    _oauth_options(xero)
    xero.add_argument("--tenant", help="organisation id or name when the consent covers several")
    xero.add_argument(
        "--custom-connection",
        action="store_true",
        help="a Xero Custom Connection: client credentials, no browser (auth_mode client_credentials)",
    )
    ignition = command(
        providers,
        "ignition",
        help="OAuth for Ignition's Reporting API",
        description="Authorise Ignition's Reporting API (a practice admin) and store the token set in the "
        "stack's ignition-api secret, next to the app's client credentials.",
    )
    _oauth_options(ignition)
    ignition_mcp = command(
        providers,
        "ignition-mcp",
        help="OAuth for Ignition's MCP server (Xero -> Ignition invoice drafts)",
        description="Authorise the Ignition user whose MCP access creates invoice drafts (only where "
        "runtime.xero_to_ignition is enabled) and store the token set in the stack's ignition-mcp "
        "secret, next to the app's client credentials.",
    )
    _oauth_options(ignition_mcp)

    for verb, what in (
        ("pause", "stop the sync and the schedules; webhooks are still accepted and queued"),
        ("resume", "start the sync and the schedules again; the queued events are applied once each"),
    ):
        command(
            commands,
            verb,
            help=what,
            description=f"{what[0].upper()}{what[1:]}. Switches the sync function's SQS event source "
            "mapping and the stack's EventBridge rules (reconciliation, poller) with your own AWS "
            "credentials. See docs/operator.md.",
        )

    status_parser = command(
        commands,
        "status",
        help="one screen: is the integration healthy?",
        description="Tokens, last webhook and poll, queue, DLQ and its top reasons, Xero calls left today, "
        "last reconciliation, the version deployed. With --all: one line per firm in clients/. Exit 0 when "
        "healthy, 3 when something (any firm) needs a person.",
    )
    status_parser.add_argument(
        "--all",
        action="store_true",
        help="every firm: each clients/NAME.json's stack (with --sandbox: NAME.sandbox.json files)",
    )
    status_parser.add_argument(
        "--clients-dir",
        type=Path,
        default=fleet.CLIENTS_DIR,
        help="where --all finds the firms (default: clients/ in this checkout)",
    )

    backfill = command(
        commands,
        "backfill",
        help="first-time sync of every Ignition client, invoice and payment",
        description="Match every Ignition record against what Xero already holds, create what is missing in "
        "batches of 50, link the rest, within Xero's limits. Resumable: run it again after an interruption.",
    )
    backfill.add_argument(
        "--phases",
        type=options.phases,
        default=PHASES,
        help=f"comma-separated phases to run (default {options.DEFAULT_PHASES})",
    )
    backfill.add_argument(
        "--max-calls", type=options.whole(1), help="pause (resumable) after this many Xero calls (1 or more)"
    )
    backfill.add_argument("--dry-run", action="store_true", help="decide and report, write nothing")
    backfill.add_argument(
        "--restart", action="store_true", help="ignore the saved checkpoint (mappings still count)"
    )
    backfill.add_argument(
        "--no-update-linked",
        dest="update_linked",
        action="store_false",
        help="link existing active Xero contacts without writing Ignition's details onto them",
    )

    replay_parser = commands.add_parser("replay", help="replay DLQ messages or archived raw events")
    sources = replay_parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    dlq = command(
        sources,
        "dlq",
        help="dead-lettered events back to the sync queue",
        description="Move matching DLQ messages back to the sync queue (fresh deduplication id); the sync "
        "applies each once. Without filters: all.",
    )
    archive = command(
        sources,
        "archive",
        help="archived raw webhooks of a time range through the sync again",
        description="Re-read raw webhook bodies archived under raw/ and received in [--from, --to], parse "
        "them as ingest did and queue them; already-applied events are skipped by the sync.",
    )
    for sub in (dlq, archive):
        sub.add_argument("--type", choices=options.RECORD_TYPES, help="only this record type")
        sub.add_argument(
            "--limit",
            type=options.whole(1, 100_000),
            default=1_000,
            help="at most this many events, 1 to 100000 (default 1000)",
        )
        sub.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")
    dlq.add_argument(
        "--category",
        type=options.category,
        help="only this failure category (e.g. xero_validation, ambiguous_match; see docs/runbook.md)",
    )
    dlq.add_argument("--error", help="only messages whose category or reason contains this text")
    dlq.add_argument(
        "--create-anew",
        action="store_true",
        help="draft_unconfirmed letters: make the Ignition draft again (once Ignition was checked: none, "
        "or it was deleted); see docs/xero-to-ignition.md",
    )
    archive.add_argument(
        "--from", dest="start", required=True, type=_when, help="ISO time, e.g. 2026-11-01T00:00Z"
    )
    archive.add_argument("--to", dest="end", type=_when, help="ISO time (default now)")

    reconcile = command(
        commands,
        "reconcile",
        help="run the reconciliation now, or show the last run",
        description="With --now: start a run (an asynchronous Lambda invocation for --client, a thread "
        "running the function for --sandbox) unless one is in progress, show its phases, and print where "
        "the report is. Without: the last run's result.",
    )
    reconcile.add_argument("--now", action="store_true", help="run a full reconciliation now")
    reconcile.add_argument(
        "--timeout",
        type=options.seconds(1, 86_400),
        default=900.0,
        metavar="SECONDS",
        help="with --now: stop waiting after this long; the run carries on (default 900)",
    )

    add_report_parser(commands, common, EPILOG)

    doctor = command(
        commands,
        "doctor",
        help="preflight: check the Xero organisation and Ignition against the configuration",
        description="Before the first sync: the Xero connection and scopes, the configured account codes "
        "(sales, rounding, payment), tax types for the configured rates and those in Ignition's invoices, "
        "currencies, lock dates, and Ignition's Reporting API access. Read-only (about 5 Xero calls). "
        "Without --client or --sandbox: the local sandbox. Exit 0 when nothing fails (warnings "
        "included), 3 when something would fail the sync.",
    )
    doctor.add_argument(
        "--invoices",
        type=options.whole(0),
        default=DEFAULT_INVOICE_SAMPLE,
        metavar="N",
        help=f"read at most N Ignition invoices, oldest change first (default {DEFAULT_INVOICE_SAMPLE}, "
        "one page; 0: all of them)",
    )

    rotate = command(
        commands,
        "rotate-webhook-secret",
        help="store a new Ignition webhook secret; the previous one stays accepted for an overlap",
        description="Store the new secret next to the current one: the ingest function accepts both for "
        "ignition.webhook.previous_secret_overlap_seconds (default a day). Set the new secret in Ignition "
        "after the printed time (cached copies expire) and before the overlap ends. See docs/runbook.md.",
    )
    rotate.add_argument(
        "--secret-file",
        type=Path,
        required=True,
        help="file holding the new secret (e.g. openssl rand -hex 24)",
    )
    rotate.add_argument(
        "--force", action="store_true", help="rotate even while the previous rotation's overlap runs"
    )
    return parser


def _when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- commands ----------------------------------------------------------------------------------


class App:
    def __init__(
        self, args: argparse.Namespace, out: Output, opener: Opener | None, ask: Asker | None
    ) -> None:
        self.args = args
        self.out = out
        self.opener = opener
        self.ask = ask
        self._pasting = False  # connect: no listener could start, the redirect is pasted

    def target(self) -> Target:
        return resolve(
            sandbox=self.args.sandbox,
            client=self.args.client,
            region=self.args.region,
            sandbox_file=self.args.sandbox_file,
        )

    def run(self) -> int:
        commands: dict[str, Callable[[], int]] = {
            "connect": self.connect,
            "status": self.status,
            "backfill": self.backfill,
            "replay": self.replay,
            "rotate-webhook-secret": self.rotate_webhook_secret,
            "doctor": self.doctor,
            "pause": lambda: self.pause(True),
            "resume": lambda: self.pause(False),
            "report": lambda: run_report(self.args, self.target(), self.out, self._opener()),
        }
        return commands.get(self.args.command, self.reconcile)()

    # -- connect ---------------------------------------------------------------------------------

    def _opener(self) -> Opener:
        if self.opener is not None:
            return self.opener
        if self.args.open:
            return _open_in_browser
        return _do_not_open

    def _announce(self, url: str) -> None:
        if self.args.paste or self._pasting:
            self.out.message(
                f"Send this URL to the admin, who opens it, signs in and consents:\n\n  {url}\n\n"
                f"Their browser then goes to {self.args.redirect_uri}?code=... and shows an error page "
                "(nothing listens there on their computer): that is expected. Ask them for the whole "
                "address from the address bar (the code in it works for a few minutes only)."
            )
            return
        self.out.message(
            f"Open this URL in a browser and consent (waiting up to {self.args.timeout:.0f} s; if the admin "
            f"is on another computer, stop and run again with --paste):\n\n  {url}\n"
        )

    def _paste(self) -> str:
        if sys.stdin.isatty():
            return input("Paste the address the admin's browser ended on: ")
        return sys.stdin.readline()

    def _tell(self, text: str) -> None:
        self._pasting = True
        self.out.message(text)

    def _ask(self) -> Asker | None:
        if self.ask is not None:
            return self.ask
        if not sys.stdin.isatty():
            return None

        def ask(connections: list[dict[str, Any]]) -> int:
            for index, item in enumerate(connections, start=1):
                self.out.message(f"  {index}. {item.get('tenantName')} ({item.get('tenantId')})")
            while True:
                answer = input("Which organisation does this integration sync? [number] ").strip()
                if answer.isdigit() and 1 <= int(answer) <= len(connections):
                    return int(answer) - 1

        return ask

    def connect(self) -> int:
        target = self.target()
        args = self.args
        # Xero's consent also picks the organisation; the browser round trip is the same for all three.
        flow: Callable[..., dict[str, Any]] = connect.connect_ignition
        if args.provider == "xero":
            flow = functools.partial(
                connect.connect_xero,
                tenant=args.tenant,
                custom_connection=args.custom_connection,
                ask=self._ask(),
            )
        elif args.provider == "ignition-mcp":
            flow = connect.connect_ignition_mcp
        summary = flow(
            target,
            redirect_uri=args.redirect_uri,
            credentials_file=args.credentials_file,
            opener=self._opener(),
            announce=self._announce,
            timeout=args.timeout,
            check_first=args.preflight,
            paste=self._paste,
            paste_only=args.paste,
            tell=self._tell,
        )

        def human() -> str:
            warning = ""
            if "warning" in summary:  # a connection nothing can renew (no refresh token)
                warning = f"\n{self.out.style('Warning', 'bad')}: {summary['warning']}"
            who = f" to {summary['tenant_name']} ({summary['tenant_id']})" if summary.get("tenant_id") else ""
            return (
                f"{self.out.style('Connected', 'ok')} {summary['provider']}{who}.\n"
                f"Token set stored in {summary['stored_in']} (refresh token {summary['refresh_token']}; "
                f"access token expires {summary['access_token_expires_at']:%Y-%m-%d %H:%M} UTC).\n"
                f"Scopes: {' '.join(summary['scopes'])}" + warning
            )

        self.out.result(summary, human)
        return Exit.OK

    # -- doctor ----------------------------------------------------------------------------------

    def doctor(self) -> int:
        args = self.args
        if args.invoices < 0:
            raise CliError("--invoices must be 0 (all) or more", Exit.USAGE)
        # A preflight is most often run against the sandbox first: it is the default target.
        target = resolve(
            sandbox=args.sandbox or not args.client,
            client=args.client,
            region=args.region,
            sandbox_file=args.sandbox_file,
        )
        self.out.message(f"Checking {target.label} against its configuration...")
        report = run_doctor(target, invoice_sample=args.invoices or None)
        self.out.result(report, lambda: self._doctor_text(report))
        return Exit.OK if report["ready"] else Exit.UNHEALTHY

    def _doctor_text(self, report: dict[str, Any]) -> str:
        out = self.out
        styles = {"ok": "ok", "warn": "warn", "fail": "bad", "skipped": "dim"}
        rows: list[list[str]] = []
        for check in report["checks"]:
            # Wrapped, so the "what to do" column stays on a screen next to its detail.
            detail = textwrap.wrap(check["detail"], DOCTOR_DETAIL_WIDTH) or [""]
            action = textwrap.wrap(check["action"], DOCTOR_ACTION_WIDTH)
            for index, (said, todo) in enumerate(itertools.zip_longest(detail, action, fillvalue="")):
                head = [check["title"], out.style(check["status"], styles[check["status"]])]
                rows.append([*(head if index == 0 else ["", ""]), said, todo])
        summary = report["summary"]
        verdict = (
            out.style("READY", "ok") if report["ready"] else out.style("NOT READY: fix the failures", "bad")
        )
        organisation = report["organisation"] or {}
        about = (
            f" ({organisation.get('name')}, {organisation.get('country')}, "
            f"{organisation.get('base_currency')})"
            if organisation
            else ""
        )
        return "\n".join(
            [
                f"{report['target']}{about}: {verdict}",
                "",
                out.table(["check", "status", "detail", "what to do"], rows),
                "",
                f"{summary['ok']} ok, {summary['warn']} warn, {summary['fail']} fail, {summary['skipped']} "
                f"skipped; {report['xero_calls']} Xero calls, {report['seconds']} s",
            ]
        )

    # -- rotate-webhook-secret --------------------------------------------------------------------

    def rotate_webhook_secret(self) -> int:
        new_secret = webhook_secret.read_new_secret(self.args.secret_file)
        summary = webhook_secret.rotate_webhook_secret(self.target(), new_secret, force=self.args.force)

        def human() -> str:
            return (
                f"{self.out.style('Stored', 'ok')} the new webhook secret in {summary['secret_id']}; the "
                f"previous one is accepted until {summary['previous_accepted_until']:%Y-%m-%d %H:%M} UTC.\n"
                f"Set the new secret in Ignition after {summary['set_in_ignition_after']:%H:%M} UTC "
                "(every cached copy has it by then), then delete the secret file."
            )

        self.out.result(summary, human)
        return Exit.OK

    # -- pause / resume --------------------------------------------------------------------------

    def pause(self, paused: bool) -> int:
        target = self.target()
        result = pause.set_paused(target, paused)

        def human() -> str:
            if result["paused"] is None:
                head = self.out.style("Partly switched: run the command again", "bad")
            elif paused:
                head = f"{self.out.style('Paused', 'warn')} {target.label}: nothing is written to Xero"
            else:
                head = f"{self.out.style('Resumed', 'ok')} {target.label}"
            rows = [[s["kind"].replace("_", " "), s["name"], s["state"]] for s in result["switches"]]
            kept = f", kept {result['retention_days']} days" if result.get("retention_days") else ""
            return "\n".join(
                [
                    head,
                    self.out.table(["switch", "name", "state"], rows),
                    f"{result['queued']} event(s) in the sync queue{kept}"
                    + ("; webhooks are still accepted and queued." if paused else "; they are applied now."),
                ]
            )

        self.out.result(result, human)
        return Exit.OK if result["paused"] is paused else Exit.ERROR

    # -- status ----------------------------------------------------------------------------------

    def status(self) -> int:
        if self.args.all:
            return self.fleet_status()
        target = self.target()
        report = status.collect_status(target)
        report["sync"] = pause.summary(target)
        self.out.result(report, lambda: self._status_text(report))
        return Exit.OK if report["healthy"] else Exit.UNHEALTHY

    def fleet_status(self) -> int:
        if self.args.client:
            raise CliError("--all reads every firm: leave out --client", Exit.USAGE)
        where: Path = self.args.clients_dir
        resolver = fleet.sandbox_resolver(where) if self.args.sandbox else fleet.stack_resolver(where)
        report = fleet.collect_fleet(where, resolver)
        self.out.result(report, lambda: fleet.render(report, self.out))
        return Exit.OK if report["healthy"] else Exit.UNHEALTHY

    def _status_text(self, report: dict[str, Any]) -> str:
        out = self.out
        now: datetime = report["checked_at"]
        verdict = out.style("HEALTHY", "ok") if report["healthy"] else out.style("NEEDS ATTENTION", "bad")
        version = report.get("version") or "unknown (deployed before versions were recorded)"
        lines = [f"{report['target']}: {verdict}  ({now:%Y-%m-%d %H:%M:%S} UTC)", f"Version: {version}", ""]
        rows: list[list[Any]] = []
        for name in ("xero", "ignition"):
            section = report[name]
            state = section.get("state", "?")
            styled = out.style(state, "ok" if state == "connected" else "bad")
            expires = section.get("access_token_expires_at")
            detail = f"access token expires {ago(expires, now) if expires else '?'}"
            if section.get("tenant_name"):
                detail = f"{section['tenant_name']}; {detail}"
            rows.append(
                [
                    f"{name.capitalize()} connection",
                    styled,
                    f"{detail}; last refresh {ago(section.get('last_refresh'), now)}",
                ]
            )
        rows.append(["Last webhook", ago(report["webhooks"]["last_received"], now), ""])
        poll = report.get("poll") or {}
        last_poll = poll.get("last_run")
        queued = f"{poll.get('last_queued', 0)} queued" if last_poll else ""
        rows.append(["Last poll run", ago(last_poll, now), queued])
        queue = report["queue"]
        age = queue.get("oldest_message_age_seconds")
        rows.append(
            [
                "Sync queue",
                f"{queue.get('visible', '?')} waiting, {queue.get('in_flight', '?')} in flight",
                f"oldest {duration(age) if age is not None else 'unknown (no CloudWatch data)'}",
            ]
        )
        dlq = report["dead_letters"]
        count = dlq.get("count")
        rows.append(["Dead-letter queue", out.style(str(count), "ok" if count == 0 else "bad"), ""])
        budget = report["xero_budget"]
        left = budget.get("calls_left_today")
        rows.append(
            [
                "Xero calls left today",
                "unknown"
                if left is None
                else out.style(f"{left:,} of {budget['day_limit']:,}", "ok" if left >= 500 else "warn"),
                f"{budget.get('calls_this_minute', 0)} this minute (limit {budget.get('minute_limit', '?')})",
            ]
        )
        rec = report["reconciliation"]
        if rec is None:
            rows.append(["Last reconciliation", "never", ""])
        else:
            report_link = (
                (rec.get("report") or {}).get("html") if isinstance(rec.get("report"), dict) else None
            )
            rows.append(
                [
                    "Last reconciliation",
                    f"{rec.get('status', '?')} ({rec.get('run_id', '?')})",
                    f"{rec.get('finished_at') or rec.get('started_at') or ''} {report_link or ''}".strip(),
                ]
            )
        sync = report.get("sync") or {}
        if sync.get("paused") is not False:
            said = {True: "PAUSED", None: "PARTLY PAUSED" if "unknown" not in sync else "unknown"}
            detail = sync.get("unknown") or "events wait in the queue; `python -m cli resume` starts it"
            rows.insert(0, ["Sync", out.style(said[sync.get("paused")], "warn"), detail])
        lines.append(out.table(["check", "state", "detail"], rows))
        if dlq.get("top_reasons"):
            lines += ["", "Top DLQ reasons:"]
            lines.append(
                out.table(
                    ["count", "category", "reason"],
                    [[r["count"], r["category"], r["reason"]] for r in dlq["top_reasons"]],
                )
            )
        if report["problems"]:
            lines += ["", "Needs attention:"] + [f"  - {p}" for p in report["problems"]]
        for key, value in report["links"].items():
            lines.append(f"{key}: {value}")
        return "\n".join(lines)

    # -- backfill --------------------------------------------------------------------------------

    def backfill(self) -> int:
        args = self.args
        target = self.target()
        chosen = BackfillOptions(
            phases=args.phases,
            max_calls=args.max_calls,
            update_linked=args.update_linked,
            dry_run=args.dry_run,
            restart=args.restart,
        )
        bar = ProgressBar(self.out.stderr)

        def progress(update: ProgressUpdate) -> None:
            bar.update(
                options.phase_name(update.phase),
                update.done,
                update.total,
                calls=update.xero_calls,
                eta_seconds=update.eta_seconds,
                calls_left_today=update.calls_left_today,
                waiting=update.waiting,
            )

        self.out.message(
            f"Backfill of {target.label}" + (" (dry run: nothing is written)" if args.dry_run else "")
        )
        try:
            result, counter = run_backfill(target, chosen, progress)
        except BackfillPaused as exc:
            bar.close()
            raise CliError(
                f"backfill paused: {exc.reason}",
                Exit.PAUSED,
                hint="run the same command again to resume from the checkpoint",
            ) from None
        except KeyboardInterrupt:
            bar.close()
            self.out.message("interrupted: progress is checkpointed; run the same command again to resume")
            raise
        bar.close()
        document = result_document(result, counter, dry_run=args.dry_run)
        self.out.result(document, lambda: render_backfill(document, self.out))
        return Exit.UNHEALTHY if document["failures"] else Exit.OK

    # -- replay ----------------------------------------------------------------------------------

    def replay(self) -> int:
        target = self.target()
        args = self.args
        if args.source == "dlq":
            result = replay.replay_dead_letters(
                target,
                record_type=args.type,
                category=args.category,
                error=args.error,
                limit=args.limit,
                dry_run=args.dry_run,
                create_anew=args.create_anew,
                progress=Ticker(self.out.stderr, "replay"),
            )
        else:
            end = args.end or datetime.now(UTC)
            if end < args.start:
                raise CliError("--to is before --from", Exit.USAGE)
            result = replay.replay_archive(
                target,
                start=args.start,
                end=end,
                record_type=args.type,
                limit=args.limit,
                dry_run=args.dry_run,
                progress=Ticker(self.out.stderr, "replay"),
            )

        def human() -> str:
            verb = "would replay" if result["dry_run"] else "replayed"
            head = (
                f"{verb.capitalize()} {result['replayed']} event(s) from the {result['source']} "
                f"(replay {result['replay_id']})"
            )
            if result["source"] == "dlq":
                head += f"; {result['left_in_dlq']} left in the DLQ"
            rows = [
                [e.get("event_id"), e.get("event_type"), e.get("record_id"), e.get("category", "")]
                for e in result["events"][:100]
            ]
            text = head + (
                "\n" + self.out.table(["event id", "type", "record", "category"], rows) if rows else ""
            )
            problems = result.get("unparseable") or []
            if problems:
                text += f"\n{len(problems)} archived body(ies) could not be parsed: " + ", ".join(
                    p["key"] for p in problems[:10]
                )
            return text

        self.out.result(result, human)
        return Exit.UNHEALTHY if result.get("unparseable") or result.get("unreadable") else Exit.OK

    # -- reconcile -------------------------------------------------------------------------------

    def reconcile(self) -> int:
        target = self.target()
        if not self.args.now:
            latest = status.latest_reconciliation(target.settings.state_table)
            document = {"latest": latest}
            self.out.result(
                document,
                lambda: "No reconciliation has run yet." if latest is None else self._reconcile_text(latest),
            )
            return Exit.OK
        self.out.message(f"Reconciling {target.label} now...")
        result = run_reconciliation(target, timeout=self.args.timeout, progress=self.out.message)
        if result.get("status") == "skipped":
            # The function found another run holding the lock between our reservation and its start.
            raise CliError(f"not run: {result.get('reason', 'another run is in progress')}", Exit.UNHEALTHY)
        self.out.result(result, lambda: self._reconcile_text(result))
        # The function's contract: "complete" (every record compared) or "partial" (stopped part-way).
        return Exit.OK if str(result.get("status", "")).lower() == "complete" else Exit.UNHEALTHY

    def _reconcile_text(self, result: dict[str, Any]) -> str:
        report = result.get("report") or {}
        lines = [f"Reconciliation {result.get('run_id', '?')}: {result.get('status', '?')}"]
        summary = result.get("summary")
        if result.get("healed") is not None:
            lines.append(
                f"Re-queued to heal: {result['healed']}; needing a person: {result.get('needs_person', '?')}"
            )
        if isinstance(summary, dict):
            lines.append(self.out.table(["measure", "value"], [[k, v] for k, v in summary.items()]))
        if isinstance(report, dict):
            for kind in ("html", "csv", "json"):
                if report.get(kind):
                    lines.append(f"Report ({kind}): {report[kind]}")
        return "\n".join(lines)


def _open_in_browser(url: str) -> None:
    webbrowser.open(url)


def _do_not_open(url: str) -> None:
    del url  # printed for the person to open


# --- entry point -------------------------------------------------------------------------------


def main(
    argv: list[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    opener: Opener | None = None,
    ask: Asker | None = None,
) -> int:
    parser = build_parser()
    words = sys.argv[1:] if argv is None else argv
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help or --version (0)
        return int(exc.code or 0)
    except UsageError as exc:
        Output(json_mode="--json" in words, stdout=stdout or sys.stdout, stderr=stderr or sys.stderr).error(
            str(exc), usage=exc.parser.format_usage().strip(), code=Exit.USAGE
        )
        return int(Exit.USAGE)
    out = Output(
        json_mode=args.json,
        stdout=stdout or sys.stdout,
        stderr=stderr or sys.stderr,
        colour=False if args.no_colour else None,
    )
    logging.basicConfig(stream=out.stderr, level=logging.DEBUG if args.debug else logging.WARNING)
    if not args.debug:
        logging.getLogger("shared").setLevel(logging.ERROR)
    try:
        return int(App(args, out, opener, ask).run())
    except CliError as exc:
        out.error(str(exc), exc.hint, code=exc.code)
        return int(exc.code)
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)
    except (EndpointConnectionError, ConnectTimeoutError, httpx.TransportError, ConnectionError) as exc:
        if args.debug:
            raise
        out.error(
            f"cannot reach the target: {exc}",
            "for --sandbox: is `python -m sandbox serve` running? For --client: the network and region",
            code=Exit.CONFIG,
        )
        return int(Exit.CONFIG)
    except (ClientError, BotoCoreError) as exc:
        if args.debug:
            raise
        out.error(f"AWS refused a request: {exc}", code=Exit.ERROR)
        return int(Exit.ERROR)
    except Exception as exc:  # a bug: say so briefly, the traceback with --debug
        if args.debug:
            raise
        out.error(f"unexpected {type(exc).__name__}: {exc}", "run again with --debug for the traceback")
        return int(Exit.ERROR)
