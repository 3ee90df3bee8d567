"""moto's server for the sandbox (``python -m sandbox.moto_server -H host -p port``), answering one
AWS request at a time, as real AWS applies each request atomically. Sources: DynamoDB completes a
TransactWriteItems "atomically so that either all of them succeed or none of them succeeds" and
isolates it from other writes ("Amazon DynamoDB Transactions: How it works",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html); SQS hides a
received message from other consumers for its visibility timeout ("Amazon SQS visibility timeout",
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html),
so two receives never take the same message while it is in flight. Serialising every request is the
stricter reading: it allows no interleaving at all, where AWS allows some for unrelated items.

moto's server runs every request in a thread of its own, and its backends are not safe for that:

* DynamoDB's TransactWriteItems deep-copies the whole table first (to roll back on a failed
  condition), so any write by another thread meanwhile fails the transaction with ``RuntimeError:
  dictionary changed size during iteration`` (HTTP 500), and a rolled-back transaction puts that
  copy back over what other threads wrote meanwhile. The bigger the table (a test session's state
  table holds every earlier test's items), the longer the copy and the likelier the clash.
* SQS's ReceiveMessage checks that a message is visible and then marks it received, so two
  receives at once can both take the same message; the second consumer then finds the first's
  idempotency record in progress.

The sync's gathered batches (shared/collector.py) write from up to 50 threads per invocation and
receive from the queue beside the event source, which made both frequent enough in a full test run
to park events as unexpected errors. The unit tests serialise in-process moto the same way
(tests/unit/moto_env.py). A long-polling ReceiveMessage waits for messages with the lock released.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.core.responses import BaseResponse
from moto.server import main
from moto.sqs.models import SQSBackend

_serial = threading.RLock()
# Only ever waited on with a timeout, by a long poll between its looks at the queue: the wait
# releases the lock (however often its request holds it), so other requests go meanwhile.
_changed = threading.Condition(_serial)
LONG_POLL_STEP_SECONDS = 0.1


def serialise_requests() -> None:
    """Every request's action (what changes or reads a backend) holds one lock."""
    call_action: Callable[..., Any] = BaseResponse.call_action

    @functools.wraps(call_action)
    def one_at_a_time(self: BaseResponse) -> Any:
        with _serial:
            return call_action(self)

    BaseResponse.call_action = one_at_a_time  # type: ignore[method-assign]

    receive: Callable[..., list[Any]] = SQSBackend.receive_message

    @functools.wraps(receive)
    def receive_then_wait(
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        # moto's own long poll would wait holding the lock (no message could be sent meanwhile).
        deadline = time.monotonic() + wait_seconds_timeout
        with _serial:
            while True:
                got = receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
                left = deadline - time.monotonic()
                if got or left <= 0:
                    return got
                _changed.wait(min(left, LONG_POLL_STEP_SECONDS))

    SQSBackend.receive_message = receive_then_wait  # type: ignore[method-assign]


if __name__ == "__main__":
    serialise_requests()
    main()
