"""Faults outside the Xero emulator: Ignition's webhook deliveries and the sandbox's AWS side.

* :class:`WebhookFaults` (``POST {ignition_url}/_emulator/faults``): ``duplicate_rate`` (a delivery
  is sent twice), ``reorder`` (a delivery is held back and sent after the next one; ``true`` means
  0.25), ``drop_rate`` (the webhook is lost: recorded with ``error="dropped"``, never sent, so only
  reconciliation or a replay can bring the record over), ``seed``. Unknown keys: ``ValueError``.
  Clearing the profile (``{}``) sends what is still held back.
* :class:`AwsFaults` (``Sandbox.set_aws_faults``): ``crash_rate`` (an sync invocation processes the
  first k records of its batch for real, then dies: no response, nothing deleted, the execution
  environment is discarded), ``kill_rate`` (the worker dies between a Xero write and the mapping
  write: the DynamoDB transaction never happens and the idempotency record stays IN_PROGRESS),
  ``conflict_rate`` (the mapping transaction fails with ``TransactionCanceledException``, as when
  another worker won the conditional write), ``seed``.

Every decision draws from ``random.Random(seed)``; counters say what was injected.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.runtime import WorkerKilled
from sandbox.seeded_faults import Profile, SeededFaults, rate

REORDER_DEFAULT_RATE = 0.25


# -- Ignition webhooks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookFaultProfile(Profile):
    duplicate_rate: float = 0.0
    reorder: float = 0.0
    drop_rate: float = 0.0

    @classmethod
    def _rate(cls, body: dict[str, Any], key: str) -> float:
        if key == "reorder" and isinstance(body.get(key), bool):
            return REORDER_DEFAULT_RATE if body[key] else 0.0
        return rate(body, key)


@dataclass(frozen=True)
class DeliveryPlan:
    drop: bool = False
    hold: bool = False
    duplicate: bool = False


class WebhookFaults(SeededFaults[WebhookFaultProfile]):
    """Decides, per original delivery, whether it is dropped, held back or duplicated."""

    def __init__(self) -> None:
        super().__init__(WebhookFaultProfile())
        self._held: list[Any] = []

    def configure(self, profile: WebhookFaultProfile) -> list[Any]:
        """Install ``profile``; returns the deliveries still held back (the caller sends them)."""
        with self._lock:
            self._install(profile)
            held, self._held = self._held, []
            return held

    def plan(self) -> DeliveryPlan:
        with self._lock:
            p, draw = self.profile, self._random
            if p.drop_rate and draw.random() < p.drop_rate:
                self.injected["webhooks_dropped"] += 1
                return DeliveryPlan(drop=True)
            if p.reorder and draw.random() < p.reorder:
                self.injected["webhooks_reordered"] += 1
                return DeliveryPlan(hold=True)
            duplicate = bool(p.duplicate_rate) and draw.random() < p.duplicate_rate
            if duplicate:
                self.injected["webhooks_duplicated"] += 1
            return DeliveryPlan(duplicate=duplicate)

    def hold(self, delivery: Any) -> None:
        with self._lock:
            self._held.append(delivery)

    def release(self) -> list[Any]:
        """What was held back, to send now that a later delivery went out."""
        with self._lock:
            held, self._held = self._held, []
            return held

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            held = len(self._held)
        return {**super().snapshot(), "held": held}


# -- AWS side of the sandbox ------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsFaultProfile(Profile):
    crash_rate: float = 0.0
    kill_rate: float = 0.0
    conflict_rate: float = 0.0


_TRANSACTION_CANCELED = {
    "Error": {
        "Code": "TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[ConditionalCheckFailed]",
    },
    "CancellationReasons": [{"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}],
    "ResponseMetadata": {"HTTPStatusCode": 400},
}


@dataclass(frozen=True)
class _FakeHttp:
    status_code: int


class AwsFaults(SeededFaults[AwsFaultProfile]):
    """Crashes in the SQS event source and failures of the mapping transaction.

    The mapping faults hook botocore's ``before-call`` event of every DynamoDB client the sync
    makes (``install`` wraps ``shared.aws.client``): a handler that returns a response short-cuts
    the call, which is how a conflict is answered without touching moto. Only transactions that
    write a forward mapping (``map#...``) and only calls made on a sync worker thread are touched.
    """

    def __init__(self, worker_thread_prefix: str = "sqs-sync") -> None:
        super().__init__(AwsFaultProfile())
        self._prefix = worker_thread_prefix
        self._hooked: set[int] = set()
        self._original: Callable[[str], Any] | None = None

    def configure(self, profile: AwsFaultProfile) -> None:
        with self._lock:
            self._install(profile)

    # -- crash injection in the SQS event source ------------------------------------------------

    def crash_point(self, batch_size: int) -> int | None:
        """How many records of this batch are processed before the invocation dies (None: no crash)."""
        with self._lock:
            if not self.profile.crash_rate or self._random.random() >= self.profile.crash_rate:
                return None
            self.injected["invocations_crashed"] += 1
            return self._random.randrange(batch_size)

    # -- the mapping transaction ---------------------------------------------------------------

    def install(self) -> None:
        from shared import aws

        if self._original is not None:
            return
        original = aws.client
        self._original = original

        def client(service: str) -> Any:
            made = original(service)
            if service == "dynamodb" and id(made) not in self._hooked:
                self._hooked.add(id(made))
                made.meta.events.register("before-call.dynamodb.TransactWriteItems", self._before_transaction)
            return made

        aws.client = client

    def uninstall(self) -> None:
        from shared import aws

        if self._original is not None:
            aws.client = self._original  # type: ignore[assignment]
            self._original = None

    def _before_transaction(
        self, params: dict[str, Any], **_: Any
    ) -> tuple[_FakeHttp, dict[str, Any]] | None:
        if not threading.current_thread().name.startswith(self._prefix):
            return None
        body = params.get("body") or b"{}"
        try:
            items = json.loads(body).get("TransactItems") or []
        except (ValueError, AttributeError):
            return None
        writes_mapping = any(
            str(item.get("Put", {}).get("Item", {}).get("pk", {}).get("S", "")).startswith("map#")
            for item in items
        )
        if not writes_mapping:
            return None
        with self._lock:
            p, draw = self.profile, self._random
            kill = bool(p.kill_rate) and draw.random() < p.kill_rate
            conflict = not kill and bool(p.conflict_rate) and draw.random() < p.conflict_rate
            if kill:
                self.injected["workers_killed_before_mapping"] += 1
            if conflict:
                self.injected["mapping_conflicts"] += 1
        if kill:
            raise WorkerKilled("killed between the Xero write and the mapping write")
        if conflict:
            return _FakeHttp(400), dict(_TRANSACTION_CANCELED)
        return None
