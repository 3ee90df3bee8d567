"""The run's report in three forms, each written by streaming the discrepancies from the working
set (a large run never builds the report in memory):

* ``report.json`` for machines: the run, the summary, then every discrepancy;
* ``report.csv`` for the bookkeeper's spreadsheet: one row per discrepancy, both sides' values;
* ``report.html`` for a partner: one self-contained page (inline CSS, no scripts, no external
  assets), summary first, then each discrepancy by what a bookkeeper knows it by (client name,
  invoice number, amount with currency), what happened and the one action that fixes it in plain
  words (``wording``), times in the firm's zone, and the ids as links to the record in Xero and
  Ignition. Every value is HTML-escaped; rows beyond ``html_max_rows`` are counted and left to the CSV.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.config import ReconcileRules
from shared.money import format_money
from shared.reconcile.model import CATEGORIES, CATEGORY_ORDER, Discrepancy, RunResult
from shared.reconcile.wording import plain

CSV_COLUMNS = (
    "category",
    "record_type",
    "ignition_id",
    "xero_id",
    "fields",
    "ignition_values",
    "xero_values",
    "detail",
    "action",
    "xero_link",
    "ignition_link",
    "other_xero_ids",
    "client_name",
    "invoice_number",
    "amount",
    "currency",
    "what_happened",
    "what_to_do",
)
ACTION_WORDS = {
    "requeued": "Re-queued for the sync",
    "reported": "Needs a person",
    "deferred": "Re-queue next run (limit reached)",
    "dry_run": "Would re-queue (dry run)",
}


class Links:
    def __init__(self, rules: ReconcileRules) -> None:
        self._xero = rules.xero_links
        self._ignition = rules.ignition_links

    def xero(self, record_type: str, xero_id: str | None) -> str | None:
        template = self._xero.get(record_type)
        return template.format(id=quote(xero_id, safe="")) if template and xero_id else None

    def ignition(self, record_type: str, ignition_id: str | None) -> str | None:
        template = self._ignition.get(record_type)
        if not template or not ignition_id:
            return None
        # A payment allocation is "<payment>:<invoice>": link the payment.
        return template.format(id=quote(ignition_id.split(":", 1)[0], safe=""))


def write_json(path: Path, result: RunResult, discrepancies: Iterable[Discrepancy], links: Links) -> None:
    with path.open("w", encoding="utf-8") as out:
        head = result.model_dump(mode="json")
        out.write(json.dumps(head)[:-1] + ', "discrepancies": [')
        for index, item in enumerate(discrepancies):
            body: dict[str, Any] = item.model_dump(mode="json")
            body["xero_link"] = links.xero(item.record_type, item.xero_id)
            body["ignition_link"] = links.ignition(item.record_type, item.ignition_id)
            out.write(("," if index else "") + "\n" + json.dumps(body))
        out.write("\n]}\n")


def _csv_row(item: Discrepancy, links: Links, firm: str) -> list[str]:
    happened, action, _ = plain(item, firm)
    return [
        item.category,
        item.record_type,
        item.ignition_id or "",
        item.xero_id or "",
        " | ".join(d.field for d in item.differences),
        " | ".join(d.ignition or "" for d in item.differences),
        " | ".join(d.xero or "" for d in item.differences),
        item.detail,
        item.action,
        links.xero(item.record_type, item.xero_id) or "",
        links.ignition(item.record_type, item.ignition_id) or "",
        " ".join(item.other_xero_ids),
        item.client_name or "",
        item.invoice_number or "",
        f"{item.amount.amount:.2f}" if item.amount else "",
        item.amount.currency if item.amount else "",
        happened,
        action,
    ]


# A plain decimal number (amounts such as -12.50) is data, not a formula: left as a number.
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def _spreadsheet_safe(value: str) -> str:
    # CSV injection (OWASP): Excel/Sheets read a cell starting with = + - @ as a formula, also
    # after leading spaces, and a leading tab or CR hides one; quoting with ' makes it text.
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    if value[:1] in ("\t", "\r") or value.lstrip(" \t\r\n")[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def write_csv(path: Path, discrepancies: Iterable[Discrepancy], links: Links, firm: str = "<firm>") -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for item in discrepancies:
            writer.writerow([_spreadsheet_safe(v) for v in _csv_row(item, links, firm)])


_CSS = """
body{font:15px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2733;
margin:0;background:#f4f6f8}
main{max-width:1100px;margin:0 auto;padding:28px 32px 48px;background:#fff;min-height:100vh}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 6px;padding-top:8px;
border-top:1px solid #e3e8ee}
.meta{color:#5b6775;font-size:13px;margin:0 0 18px}
.verdict{padding:12px 16px;border-radius:6px;margin:16px 0 20px;font-weight:600}
.ok{background:#e7f6ec;color:#1e6b35}.attention{background:#fff4e0;color:#8a5300}
.partial{background:#fdecec;color:#9b1c1c}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{text-align:left;padding:7px 9px;border-bottom:1px solid #e8ecf0;vertical-align:top}
th{background:#f7f9fb;font-weight:600;color:#3b4754}
.num{text-align:right;font-variant-numeric:tabular-nums}
.summary td:first-child{width:45%}
.desc{color:#5b6775;font-size:13px;margin:0 0 8px}
.tag{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;white-space:nowrap}
.requeued{background:#e7f0fb;color:#1f4f8f}.reported{background:#fff4e0;color:#8a5300}
.deferred,.dry_run{background:#eef0f3;color:#4a5563}
.diff{margin:0;padding:0;list-style:none}.diff li{margin:0 0 2px}
.f{font-weight:600}.ign{color:#1e6b35}.xero{color:#9b1c1c}
code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f2f4f7;padding:1px 4px;border-radius:3px;
word-break:break-all}
code.slug{white-space:nowrap;word-break:normal}a{color:#1f5fbf}
.more{color:#5b6775;font-style:italic;margin:8px 0}
.who{font-weight:600}.sub{color:#5b6775;font-size:12.5px}.fix{margin-top:3px}
.fix b{color:#1f4f8f}.tech{color:#8592a0;font-size:12px;margin-top:3px}
footer{margin-top:36px;color:#8592a0;font-size:12px}
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _link(url: str | None, text: str) -> str:
    return f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(text)}</a>' if url else ""


# "550.0 AUD" as the comparison writes an amount: shown as money, "550.00 AUD".
_AMOUNT_TEXT = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?) ([A-Z]{3})\b")
# An ISO 8601 time with its offset, as the engine writes them into a finding's detail.
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def local_time(value: str, zone: ZoneInfo) -> str:
    """An ISO time in the firm's zone, as a person reads it: ``27 Nov 2026, 10:57 AEDT``."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value  # no offset: which zone it means is unknown, so it is left as written
    return moment.astimezone(zone).strftime("%-d %b %Y, %H:%M %Z")


def readable(text: str, zone: ZoneInfo) -> str:
    """Amounts with two decimals and times in the firm's zone inside a sentence."""
    text = _AMOUNT_TEXT.sub(lambda m: format_money(m.group(1), m.group(2)), text)
    return _ISO_TIME.sub(lambda m: local_time(m.group(0), zone), text)


def _differences(item: Discrepancy, zone: ZoneInfo) -> str:
    if not item.differences:
        return ""
    rows = "".join(
        f'<li><span class="f">{_e(d.field)}</span>: Ignition '
        f'<span class="ign">{_e(readable(d.ignition or "", zone) or None)}</span>'
        f' &middot; Xero <span class="xero">{_e(readable(d.xero or "", zone) or None)}</span></li>'
        for d in item.differences
    )
    return f'<ul class="diff">{rows}</ul>'


def write_html(
    path: Path,
    result: RunResult,
    discrepancies: Iterable[Discrepancy],
    links: Links,
    *,
    client_name: str,
    max_rows: int,
    csv_name: str = "report.csv",
    time_zone: str = "Australia/Sydney",
) -> None:
    zone = ZoneInfo(time_zone)
    with path.open("w", encoding="utf-8") as out:
        _html_head(out, result, client_name, zone)
        current: str | None = None
        shown: dict[str, int] = {}
        hidden: dict[str, int] = {}
        total_shown = 0

        def close_section() -> None:
            if current is None:
                return
            out.write("</tbody></table>")
            if hidden.get(current):
                out.write(f'<p class="more">{hidden[current]} more in this category: see {_e(csv_name)}.</p>')

        for item in discrepancies:
            if item.category != current:
                close_section()
                current = item.category
                title, description = CATEGORIES[item.category]
                count = result.summary.get(item.category, 0)
                out.write(
                    f'<h2 id="{_e(item.category)}">{_e(title)} <small>({count})</small></h2>'
                    f'<p class="desc">{_e(description)}</p>'
                    "<table><thead><tr><th>Record</th><th>What happened, and what to do</th>"
                    "<th>Status</th><th>In Ignition</th><th>In Xero</th></tr></thead><tbody>"
                )
            if total_shown >= max_rows:
                hidden[item.category] = hidden.get(item.category, 0) + 1
                continue
            total_shown += 1
            shown[item.category] = shown.get(item.category, 0) + 1
            out.write(_html_row(item, links, client_name, zone))
        close_section()
        out.write(
            f"<footer>Run {_e(result.run_id)} &middot; mode {_e(result.mode)} &middot; finished "
            f"{_e(local_time(result.finished_at, zone))} &middot; times in {_e(zone.key)} &middot; "
            f"Xero calls {_e(result.counters.get('xero_calls', 0))}, Ignition requests "
            f"{_e(result.counters.get('ignition_requests', 0))}. Generated by the Ignition-Xero sync."
            "</footer></main></body></html>\n"
        )


def _html_head(out: TextIO, result: RunResult, client_name: str, zone: ZoneInfo) -> None:
    if result.status == "partial":
        verdict = (
            "partial",
            f"This run stopped early ({result.stopped_because}); the next run carries on from here.",
        )
    elif result.needs_person:
        verdict = ("attention", f"{result.needs_person} item(s) need a person.")
    elif result.healed:
        verdict = ("ok", f"All good: {result.healed} item(s) were re-queued for the sync to repair.")
    else:
        verdict = ("ok", "All good: Xero and Ignition agree.")
    out.write(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Reconciliation {_e(client_name)} {_e(local_time(result.started_at, zone))}</title>"
        f"<style>{_CSS}</style></head><body><main>"
        f"<h1>Xero &harr; Ignition reconciliation</h1>"
        f'<p class="meta">{_e(client_name)} &middot; {_e(local_time(result.started_at, zone))} &middot; '
        f"{_e(result.mode)} run{' (dry run)' if result.dry_run else ''}</p>"
        f'<div class="verdict {verdict[0]}">{_e(verdict[1])}</div>'
        '<table class="summary"><thead><tr><th>Category</th><th>What it means</th>'
        '<th class="num">Count</th></tr></thead><tbody>'
    )
    for category in CATEGORY_ORDER:
        title, description = CATEGORIES[category]
        count = result.summary.get(category, 0)
        label = f'<a href="#{_e(category)}">{_e(title)}</a>' if count else _e(title)
        out.write(f'<tr><td>{label}</td><td>{_e(description)}</td><td class="num">{count}</td></tr>')
    out.write(
        f'<tr><th colspan="2">Total</th><th class="num">{sum(result.summary.values())}</th></tr>'
        "</tbody></table>"
    )


def _code(inner: str, kind: str = "") -> str:
    return f'<code class="{kind}">{inner}</code>' if inner else "&mdash;"


def _record(item: Discrepancy) -> str:
    """What the bookkeeper knows the record by: client name, invoice number, amount with currency."""
    kind = str(item.record_type)
    lines = [f'<div class="who">{_e(item.client_name or "Client not known to this run")}</div>']
    facts = [kind.capitalize()]
    if item.invoice_number:
        facts.append(("invoice " if kind == "payment" else "") + item.invoice_number)
    if item.amount is not None:
        facts.append(str(item.amount))
    lines.append(f'<div class="sub">{_e(" · ".join(facts))}</div>')
    return "".join(lines)


def _html_row(item: Discrepancy, links: Links, firm: str, zone: ZoneInfo) -> str:
    ignition = _link(links.ignition(item.record_type, item.ignition_id), item.ignition_id or "") or ""
    xero_ids = [item.xero_id] if item.xero_id else []
    status = ACTION_WORDS.get(item.action, item.action)
    xero = "<br>".join(_link(links.xero(item.record_type, x), x) for x in [*xero_ids, *item.other_xero_ids])
    happened, action, detail = plain(item, firm)
    return (
        f'<tr class="finding"><td>{_record(item)}</td>'
        f"<td>{_e(happened)}"
        f'<div class="fix"><b>What to do:</b> {_e(action)}</div>'
        f'<div class="tech">{_e(readable(detail, zone))}</div>{_differences(item, zone)}</td>'
        f'<td><span class="tag {_e(item.action)}">{_e(status)}</span></td>'
        f"<td>{_code(ignition, 'slug')}</td><td>{_code(xero)}</td></tr>"
    )


def write_all(
    directory: Path,
    result: RunResult,
    discrepancies: Callable[[], Iterable[Discrepancy]],
    rules: ReconcileRules,
    client_name: str,
) -> dict[str, Path]:
    links = Links(rules)
    paths = {kind: directory / f"report.{kind}" for kind in ("json", "csv", "html")}
    write_json(paths["json"], result, discrepancies(), links)
    write_csv(paths["csv"], discrepancies(), links, client_name)
    write_html(
        paths["html"],
        result,
        discrepancies(),
        links,
        client_name=client_name,
        max_rows=rules.html_max_rows,
        time_zone=rules.time_zone,
    )
    return paths
