"""``backfill``: wires :class:`shared.backfill.Backfill` to the real adapters of one target."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cli.errors import CliError, Exit
from cli.options import phase_name
from cli.output import Output, duration
from cli.target import Target
from shared.backfill import Backfill, BackfillOptions, BackfillResult, ProgressUpdate
from shared.config import RecordType
from shared.ignition.budget import IgnitionRequestBudget
from shared.ignition.reporting import IgnitionReportingClient
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.oauth import OAuthError
from shared.store.budget_usage import BudgetUsage, read_budget_usage
from shared.store.bulk import put_new_mapping, write_audit_entries
from shared.store.checkpoints import CheckpointStore
from shared.store.mappings import AuditEntry, BatchMappingReader, MappingConflict, RecordMapping
from shared.wiring import ignition_token_provider, xero_token_provider
from shared.xero.budget import DynamoCallBudget
from shared.xero.client import MAX_BATCH_SIZE, XeroCall, XeroClient

# A CLI may sit out a full minute window; a Lambda may not (it would be billed for sleeping).
CLI_MAX_INLINE_WAIT_SECONDS = 65.0
MAPPING_WRITERS = 8


class CallCounter:
    def __init__(self) -> None:
        self._count = 0
        self._statuses: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, call: XeroCall) -> None:
        with self._lock:
            self._count += 1
            key = str(call.status)
            self._statuses[key] = self._statuses.get(key, 0) + 1

    def count(self) -> int:
        with self._lock:
            return self._count

    def statuses(self) -> dict[str, int]:
        with self._lock:
            return dict(self._statuses)


@dataclass
class _Mappings:
    reader: BatchMappingReader
    table: str

    def mappings(self, record_type: RecordType, ignition_ids: Sequence[str]) -> dict[str, RecordMapping]:
        return self.reader.forward(record_type, ignition_ids)

    def owners(self, record_type: RecordType, xero_ids: Sequence[str]) -> dict[str, str]:
        return self.reader.reverse(record_type, xero_ids)

    def save(self, mapping: RecordMapping) -> None:
        put_new_mapping(self.table, mapping)

    def save_many(self, mappings: Sequence[RecordMapping]) -> set[str]:
        """Conditional puts, a few at a time (each is one round trip to DynamoDB)."""
        conflicts: set[str] = set()

        def one(mapping: RecordMapping) -> None:
            try:
                self.save(mapping)
            except MappingConflict:
                conflicts.add(mapping.ignition_id)

        with ThreadPoolExecutor(MAPPING_WRITERS) as pool:
            for future in [pool.submit(one, m) for m in mappings]:
                future.result()
        return conflicts

    def audit(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            write_audit_entries(self.table, entries)


@dataclass
class _Ignition:
    client: IgnitionReportingClient

    def iter_clients(self) -> Iterator[IgnitionClient]:
        return self.client.iter_clients()

    def iter_invoices(self) -> Iterator[IgnitionInvoice]:
        return self.client.iter_invoices()

    def iter_payments(self) -> Iterator[IgnitionPayment]:
        return self.client.iter_payments()


def run_backfill(
    target: Target, options: BackfillOptions, progress: Callable[[ProgressUpdate], None]
) -> tuple[BackfillResult, CallCounter]:
    settings = target.settings
    config = target.config.model_copy(
        update={
            "xero": target.config.xero.model_copy(
                update={"max_inline_wait_seconds": CLI_MAX_INLINE_WAIT_SECONDS}
            )
        }
    )
    try:
        tokens, tenant_id = xero_token_provider(settings, config, None)
        ignition_tokens = ignition_token_provider(settings, config)
    except OAuthError as exc:
        raise CliError(
            str(exc), Exit.AUTH, hint="connect first: `python -m cli connect xero|ignition`"
        ) from None
    if tenant_id is None:
        raise CliError(
            "Xero is not connected (no tenant id stored)", Exit.AUTH, hint="run `python -m cli connect xero`"
        )
    counter = CallCounter()
    budget = DynamoCallBudget(settings.state_table, tenant_id, config.xero)

    def usage() -> BudgetUsage | None:
        return read_budget_usage(settings.state_table, tenant_id, config.xero)

    with (
        XeroClient(config.xero, tokens, tenant_id, budget, on_call=counter) as xero,
        IgnitionReportingClient.from_config(
            config.ignition,
            ignition_tokens.access_token,
            # The configured page (Ignition's largest known to work, 250) and date window.
            force_refresh=ignition_tokens.force_refresh,
            budget=IgnitionRequestBudget.in_table(settings.state_table, config.ignition),
        ) as ignition,
    ):
        engine = Backfill(
            xero=xero,
            ignition=_Ignition(ignition),
            mappings=_Mappings(
                BatchMappingReader(settings.state_table),
                settings.state_table,
            ),
            checkpoints=CheckpointStore(settings.state_table),
            config=config,
            xero_calls=counter.count,
            budget=usage,
            progress=progress,
        )
        return engine.run(options), counter


def result_document(result: BackfillResult, counter: CallCounter, *, dry_run: bool = False) -> dict[str, Any]:
    checkpoint = result.checkpoint
    records = result.records
    calls = checkpoint.xero_calls
    return {
        "dry_run": dry_run,
        "run_id": checkpoint.run_id,
        "status": checkpoint.status,
        "note": checkpoint.note,
        "resumed": checkpoint.resumed,
        "phases_done": checkpoint.phases_done,
        "counts": {phase: counts.model_dump() for phase, counts in checkpoint.counts.items()},
        "planned": result.planned,
        "failures": [
            {
                "record_type": str(f.record_type),
                "ignition_id": f.ignition_id,
                "category": f.category,
                "reason": f.reason,
            }
            for f in result.failures
        ],
        "xero_calls": calls,
        "xero_calls_this_pass": result.xero_calls_this_pass,
        "xero_responses_this_pass": counter.statuses(),
        "records": records,
        "calls_per_record": round(calls / records, 4) if records else None,
        "seconds_this_pass": round(result.seconds, 2),
    }


def render(doc: dict[str, Any], out: Output) -> str:
    """The run (or, with ``--dry-run``, the plan) for people: one row per phase, then the records
    that need a person, each with its reason."""
    dry = bool(doc.get("dry_run"))
    if dry:
        head = f"Dry run {doc['run_id']}: nothing was written. The real run would:"
        columns = ["phase", "records", "mapped before", "create", "link", "skip", "need a person"]
    else:
        state = out.style(doc["status"], "ok" if doc["status"] == "completed" else "warn")
        head = f"Backfill {doc['run_id']}: {state}" + (
            f" (resumed {doc['resumed']}x)" if doc["resumed"] else ""
        )
        columns = ["phase", "records", "mapped before", "created", "linked", "skipped", "failed"]
    rows = [
        [
            phase_name(phase),
            c["total"],
            c["already_mapped"],
            c["created"],
            c["linked"],
            c["skipped"],
            c["failed"],
        ]
        for phase, c in doc["counts"].items()
    ]
    lines = [head, out.table(columns, rows)]
    if dry:
        batches = sum(-(-sum(p.values()) // MAX_BATCH_SIZE) for p in doc["planned"].values())
        lines.append(
            f"Xero calls: {doc['xero_calls_this_pass']:,} to read; the writes take about {batches:,} more "
            f"(batches of {MAX_BATCH_SIZE})."
        )
    else:
        lines.append(
            f"Xero calls: {doc['xero_calls']:,} for {doc['records']:,} records"
            + (f" ({doc['calls_per_record']} per record)" if doc["calls_per_record"] is not None else "")
            + f"; this pass {doc['xero_calls_this_pass']:,} calls in {duration(doc['seconds_this_pass'])}."
        )
    if doc["failures"]:
        said = "would need a person" if dry else "need a person"
        lines.append(out.style(f"{len(doc['failures'])} record(s) {said}:", "bad"))
        lines.append(
            out.table(
                ["type", "ignition id", "category", "reason"],
                [
                    [f["record_type"], f["ignition_id"], f["category"], f["reason"][:100]]
                    for f in doc["failures"][:50]
                ],
            )
        )
        if len(doc["failures"]) > 50:
            lines.append(f"... and {len(doc['failures']) - 50} more (--json lists them all)")
    return "\n".join(lines)
