"""AWS list prices used by the cost figures: one table, in one place, to correct when AWS changes
them. Region ap-southeast-2 (Sydney), USD, on-demand, without the free tier (a client's account
may already use it for other things; the docs say what the free tier would remove).

Source: the AWS pricing pages of each service (aws.amazon.com/<service>/pricing), as the author
remembered them on 2026-11-25; no network was available to re-check. ``sure=False`` marks a price
the author is not certain of for Sydney: check it before quoting the cost to a client.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "ap-southeast-2"
AS_OF = "2026-11-25 (from memory of the AWS pricing pages; not re-checked: no network)"


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    sure: bool
    note: str = ""


PRICES: dict[str, Price] = {
    "apigw_rest_request": Price(
        4.25 / 1e6, "REST API request (first 333 M/month)", False, "us-east-1 is $3.50/M"
    ),
    "lambda_request": Price(0.20 / 1e6, "invocation", True),
    "lambda_arm_gb_second": Price(
        0.0000133334, "GB-second, arm64", False, "us-east-1 figure; Sydney believed equal"
    ),
    "sqs_fifo_request": Price(0.50 / 1e6, "FIFO request (64 KB chunk)", False, "us-east-1 figure"),
    "ddb_write_request_unit": Price(
        0.7125 / 1e6, "on-demand write request unit", False, "after the Nov 2024 cut"
    ),
    "ddb_read_request_unit": Price(
        0.1425 / 1e6, "on-demand read request unit", False, "after the Nov 2024 cut"
    ),
    "ddb_storage_gb_month": Price(0.285, "GB-month (first 25 GB free)", False),
    "s3_put_request": Price(0.0055 / 1000, "PUT/COPY/POST/LIST request", False),
    "s3_get_request": Price(0.00044 / 1000, "GET request", False),
    "s3_storage_gb_month": Price(0.025, "GB-month, Standard", False),
    "secret_month": Price(0.40, "secret per month", True),
    "secrets_api_call": Price(0.05 / 10_000, "API call", True),
    "cw_alarm_month": Price(0.10, "standard-resolution alarm per month", True),
    "cw_dashboard_month": Price(3.00, "dashboard per month beyond the 3 free per account", True),
    "cw_custom_metric_month": Price(0.30, "custom metric per month (prorated by the hour it is sent)", True),
    "cw_logs_ingest_gb": Price(0.57, "GB of logs ingested", False, "us-east-1 is $0.50"),
    "cw_logs_storage_gb_month": Price(0.033, "GB-month of logs stored", False),
    "kms_key_month": Price(1.00, "customer managed key per month", True),
    "kms_request": Price(0.03 / 10_000, "KMS request", True),
    "eventbridge_scheduled_invocation": Price(0.0, "scheduled rule invocation (free)", False),
}

# Not prices but the assumptions the cost model needs; stated in docs/benchmarks.md beside it.
ASSUMPTIONS = {
    # Lambda's billed duration in AWS is not the sandbox's (moto is slower than DynamoDB, the
    # emulators faster than Xero): each call is priced at a typical in-region latency.
    "aws_call_ms": {"dynamodb": 6.0, "sqs": 10.0, "s3": 25.0, "secretsmanager": 15.0, "kms": 10.0},
    "xero_call_ms": 400.0,  # Sydney -> api.xero.com, a write (2nd-hand: community reports 250-600 ms)
    "ignition_call_ms": 400.0,
    "lambda_platform_log_bytes": 350,  # START, END and REPORT lines per invocation
    "raw_body_bytes": 5 * 1024,
    "log_retention_days": 90,  # infra ClientConfig default
    "raw_archive_months_kept": 12,
    # Share of invocations that start a new execution environment (init billed since Aug 2025):
    # events at 10,000/month arrive ~4 minutes apart, near Lambda's idle reuse window.
    "cold_start_share_events": 0.5,
    "cold_start_share_scheduled": 1.0,
    # The poller runs every 2 minutes, well inside the minutes Lambda keeps an idle environment.
    "cold_start_share_poll": 0.1,
    "dashboards_free_left": True,
    # Lambda's SQS event source long-polls: a new message is usually picked up within tens of ms
    # (not measured here: the sandbox's poller is not Lambda's).
    "esm_pickup_ms": 100.0,  # the client's account has fewer than 3 dashboards besides ours
}
