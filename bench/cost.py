"""AWS cost per 1,000 events and per client account per month, from measured request counts.

Counts come from the benchmarks (boto3 calls per warm invocation of each handler, log bytes and
EMF metrics of a real invocation, the calls of each scheduled reconciliation mode) and from the
synthesised stack (secrets, alarms, dashboards, keys, schedules, memory sizes). Prices are in
``bench/prices.py``. Lambda duration is modelled, not the sandbox's: our own CPU time as measured
plus each AWS, Xero and Ignition call at the latency in ``prices.ASSUMPTIONS``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from bench.prices import ASSUMPTIONS, PRICES

SECONDS_PER_MONTH = 30 * 24 * 3600
GB = 1024**3


def runs_per_month(expression: str) -> float:
    """Invocations a month of an EventBridge schedule (``rate(...)`` exactly; ``cron`` counted by
    its minute/hour fields, the day fields taken as every day)."""
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if rate:
        n, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        seconds = {"minute": 60, "hour": 3600, "day": 86_400}[unit] * n
        return SECONDS_PER_MONTH / seconds
    cron = re.fullmatch(r"cron\((\S+) (\S+) \S+ \S+ \S+ \S+\)", expression.strip())
    if cron:
        minutes, hours = cron.groups()

        def count(field_: str, size: int) -> int:
            if field_ == "*":
                return size
            if field_.startswith("*/") or "/" in field_:
                return math.ceil(size / int(field_.split("/")[1]))
            return len(field_.split(","))

        return count(minutes, 60) * count(hours, 24) * 30.0
    raise ValueError(f"unknown schedule {expression!r}")


def ddb_units(calls: dict[str, float]) -> tuple[float, float]:
    """(write, read) request units for boto3 DynamoDB calls, items of at most 1 KB (ours are)."""
    wru = rru = 0.0
    for name, n in calls.items():
        if not name.startswith("dynamodb."):
            continue
        op = name.split(".", 1)[1]
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            wru += n
        elif op == "TransactWriteItems#items":
            wru += 2 * n  # transactional writes cost two units per item
        elif op == "BatchWriteItem":
            wru += 25 * n  # upper bound: full batches
        elif op in ("GetItem", "Query"):
            rru += n  # strongly consistent, < 4 KB
        elif op == "BatchGetItem":
            rru += 100 * n
    return wru, rru


def modelled_ms(
    own_ms: float, calls: dict[str, float], xero_calls: float = 0, ignition_calls: float = 0
) -> float:
    latency: dict[str, float] = ASSUMPTIONS["aws_call_ms"]  # type: ignore[assignment]
    aws = sum(n * latency.get(name.split(".", 1)[0], 10.0) for name, n in calls.items() if "#" not in name)
    external = xero_calls * float(ASSUMPTIONS["xero_call_ms"]) + ignition_calls * float(  # type: ignore[arg-type]
        ASSUMPTIONS["ignition_call_ms"]  # type: ignore[arg-type]
    )
    return own_ms + aws + external


@dataclass
class Lines:
    """Cost lines in USD with how each was computed."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, service: str, what: str, quantity: float, price_key: str) -> None:
        price = PRICES[price_key]
        self.items.append(
            {
                "service": service,
                "item": what,
                "quantity": round(quantity, 4),
                "unit_price_usd": price.usd,
                "price_sure": price.sure,
                "usd": quantity * price.usd,
            }
        )

    @property
    def total(self) -> float:
        return float(sum(i["usd"] for i in self.items))

    def rounded(self) -> list[dict[str, Any]]:
        return [{**i, "usd": round(i["usd"], 4)} for i in self.items]


@dataclass
class FunctionProfile:
    """One function's per-invocation figures, as measured."""

    memory_mb: int
    own_ms: float  # warm, our code only (sandbox)
    aws_calls: dict[str, float]  # per warm invocation
    init_ms: float  # cold start, imports + module set-up
    log_bytes: float  # per invocation, at the deployed log level
    xero_calls: float = 0.0
    ignition_calls: float = 0.0

    def billed_ms(self, cold_share: float) -> float:
        return math.ceil(
            modelled_ms(self.own_ms, self.aws_calls, self.xero_calls, self.ignition_calls)
            + cold_share * self.init_ms
        )


def _function_lines(
    lines: Lines, name: str, f: FunctionProfile, invocations: float, cold_share: float
) -> None:
    lines.add("Lambda", f"{name} invocations", invocations, "lambda_request")
    gb_s = invocations * f.billed_ms(cold_share) / 1000 * f.memory_mb / 1024
    lines.add(
        "Lambda",
        f"{name} GB-seconds ({f.memory_mb} MB x {f.billed_ms(cold_share)} ms)",
        gb_s,
        "lambda_arm_gb_second",
    )
    wru, rru = ddb_units(f.aws_calls)
    if wru:
        lines.add("DynamoDB", f"{name} write units", invocations * wru, "ddb_write_request_unit")
    if rru:
        lines.add("DynamoDB", f"{name} read units", invocations * rru, "ddb_read_request_unit")
    sqs = sum(n for k, n in f.aws_calls.items() if k.startswith("sqs."))
    if sqs:
        lines.add("SQS", f"{name} requests", invocations * sqs, "sqs_fifo_request")
    s3 = sum(n for k, n in f.aws_calls.items() if k.startswith("s3.Put"))
    if s3:
        lines.add("S3", f"{name} PUTs", invocations * s3, "s3_put_request")
    secrets = sum(n for k, n in f.aws_calls.items() if k.startswith("secretsmanager."))
    if secrets:
        lines.add("Secrets Manager", f"{name} API calls", invocations * secrets, "secrets_api_call")
    log_gb = invocations * (f.log_bytes + float(ASSUMPTIONS["lambda_platform_log_bytes"])) / GB  # type: ignore[arg-type]
    lines.add("CloudWatch Logs", f"{name} log ingestion (GB)", log_gb, "cw_logs_ingest_gb")
    retention_months = float(ASSUMPTIONS["log_retention_days"]) / 30  # type: ignore[arg-type]
    lines.add(
        "CloudWatch Logs",
        f"{name} log storage (GB-month, steady)",
        log_gb * retention_months,
        "cw_logs_storage_gb_month",
    )


def per_thousand_events(ingest: FunctionProfile, sync: FunctionProfile, cold_share: float) -> Lines:
    lines = Lines()
    n = 1000.0
    lines.add("API Gateway", "REST requests", n, "apigw_rest_request")
    _function_lines(lines, "ingest", ingest, n, cold_share)
    _function_lines(lines, "sync", sync, n, cold_share)
    # The event source mapping's ReceiveMessage that returned this event and its DeleteMessageBatch
    # (both billed; its idle long polls are in the idle cost).
    lines.add("SQS", "event source mapping receive + delete", 2 * n, "sqs_fifo_request")
    # Cold starts fetch the secrets the warm path has cached (ingest 1, sync 3).
    lines.add("Secrets Manager", "secret reads after cold starts", n * cold_share * 4, "secrets_api_call")
    months = float(ASSUMPTIONS["raw_archive_months_kept"])  # type: ignore[arg-type]
    raw_gb = n * float(ASSUMPTIONS["raw_body_bytes"]) / GB  # type: ignore[arg-type]
    lines.add("S3", "raw bodies kept (GB-month, steady state)", raw_gb * months, "s3_storage_gb_month")
    return lines


HOURS_PER_MONTH = SECONDS_PER_MONTH / 3600


def metric_months(metrics_by_mode: dict[str, list[str]], schedules: list[dict[str, str]]) -> float:
    """Custom metrics billed a month by the scheduled runs that publish them: CloudWatch prorates a
    metric by the hours it is sent in, so each distinct metric counts the hours some run publishing
    it falls in (a run every hour or more often: every hour; once a day: 30 hours) over 720."""
    hours: dict[str, float] = {}
    for entry in schedules:
        runs = min(runs_per_month(entry["expression"]), HOURS_PER_MONTH)
        for metric in metrics_by_mode.get(entry["mode"], []):
            hours[metric] = min(hours.get(metric, 0.0) + runs, HOURS_PER_MONTH)
    return sum(hours.values()) / HOURS_PER_MONTH


def idle_month(
    inventory: dict[str, Any], scheduled: dict[str, FunctionProfile], metrics_at_idle: float
) -> Lines:
    """``scheduled``: a profile per schedule mode (the reconciliation's modes, ``poll``)."""
    lines = Lines()
    lines.add("Secrets Manager", "secrets", inventory["secrets"], "secret_month")
    lines.add("CloudWatch", "alarms", inventory["alarms"], "cw_alarm_month")
    paid_dashboards = 0 if ASSUMPTIONS["dashboards_free_left"] else inventory["dashboards"]
    lines.add(
        "CloudWatch",
        f"dashboards ({inventory['dashboards']}, within the free 3)",
        paid_dashboards,
        "cw_dashboard_month",
    )
    lines.add("KMS", "customer managed keys", inventory["kms_keys"], "kms_key_month")
    lines.add(
        "CloudWatch",
        "custom metrics the idle schedules publish (metric-months: hours sent / 720)",
        metrics_at_idle,
        "cw_custom_metric_month",
    )
    # Lambda's SQS event source keeps ~5 long polls (20 s) open on an idle queue (AWS docs; 2nd-hand
    # figure), each a billed request.
    lines.add("SQS", "idle long polls of the event source mapping", 5 * 3 * 60 * 24 * 30, "sqs_fifo_request")
    for entry in inventory["schedules"]:
        schedule, mode = entry["expression"], entry["mode"]
        profile = scheduled.get(mode)
        if profile is None:
            continue
        runs = runs_per_month(schedule)
        if mode == "poll":  # every 2 minutes: mostly a warm environment, its token cached
            cold = float(ASSUMPTIONS["cold_start_share_poll"])  # type: ignore[arg-type]
            _function_lines(lines, f"poll ({schedule}, {runs:.0f} runs)", profile, runs, cold)
            # A new environment reads the Ignition secret twice (credentials, token set).
            lines.add("Secrets Manager", "poll secret reads (cold)", runs * cold * 2, "secrets_api_call")
            continue
        cold = float(ASSUMPTIONS["cold_start_share_scheduled"])  # type: ignore[arg-type]
        _function_lines(lines, f"reconcile {mode} ({schedule}, {runs:.0f} runs)", profile, runs, cold)
        if not any(call.startswith("secretsmanager.") for call in profile.aws_calls):
            # Only where the measured run read none (a warm cache): else they are counted above.
            reads = runs * 3
            lines.add("Secrets Manager", f"reconcile {mode} secret reads (cold)", reads, "secrets_api_call")
    return lines
