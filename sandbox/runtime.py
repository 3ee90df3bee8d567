"""The parts of AWS Lambda the sandbox needs: an API Gateway front that turns HTTP requests into
REST proxy events, and an SQS event source that drives a handler with Lambda's semantics
(batches of up to 10, visibility timeout, partial batch failures, redrive to the DLQ after
maxReceiveCount receives, done by moto's queue itself)."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from shared import aws

logger = logging.getLogger(__name__)

EMPTY_POLL_PAUSE_SECONDS = 0.1
FUNCTION_ARN_PREFIX = "arn:aws:lambda:ap-southeast-2:000000000000:function:"

Handler = Callable[[dict[str, Any], Any], dict[str, Any] | None]
# Cold-starts the handler for one concurrent execution environment (worker index -> handler).
HandlerFactory = Callable[[int], Handler]
# Given a batch's size, how many of its records are processed before the invocation dies (None: no).
CrashPoint = Callable[[int], int | None]


class WorkerKilled(BaseException):
    """The execution environment died (timeout, out of memory, host lost) in the middle of an
    invocation. A BaseException on purpose: no ``except Exception`` in the handler may survive it,
    exactly as nothing in a killed Lambda runs its error handling."""


@dataclass
class LambdaContext:
    """What Powertools reads from the Lambda context object."""

    function_name: str
    timeout_seconds: float
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    function_version: str = "$LATEST"
    log_stream_name: str = "sandbox"
    # Named after the function, as Lambda names them.
    invoked_function_arn: str = field(init=False)
    log_group_name: str = field(init=False)

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"{FUNCTION_ARN_PREFIX}{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


class ApiGatewayFront:
    """WSGI app: ``METHOD /path`` -> handler, as an API Gateway REST proxy integration."""

    def __init__(
        self, routes: dict[tuple[str, str], tuple[str, Handler]], timeout_seconds: float = 10
    ) -> None:
        self._routes = routes
        self.timeout_seconds = timeout_seconds
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    @property
    def routes(self) -> dict[tuple[str, str], tuple[str, Handler]]:
        """The route table: replacing an entry is a redeploy of that function."""
        return self._routes

    @property
    def busy(self) -> bool:
        """A request is being handled: what it enqueues may not be in the queue yet."""
        with self._in_flight_lock:
            return self._in_flight > 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
        route = self._routes.get((method, path))
        if route is None:
            return self._respond(start_response, 404, {"message": "Missing Authentication Token"})
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode("ascii"), True
        request_id = str(uuid.uuid4())
        event = {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": None,
            "pathParameters": None,
            "body": text,
            "isBase64Encoded": is_b64,
            "requestContext": {
                "requestId": request_id,
                "stage": "sandbox",
                "httpMethod": method,
                "path": f"/sandbox{path}",
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1")},
            },
        }
        name, handler = route
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            response = handler(event, LambdaContext(name, self.timeout_seconds)) or {}
        except Exception:
            logger.exception("handler raised", extra={"function": name})
            return self._respond(start_response, 502, {"message": "Internal server error"})
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1
        status = int(response.get("statusCode", 200))
        payload = response.get("body") or ""
        start_response(
            f"{status} {'OK' if status < 400 else 'ERROR'}", list((response.get("headers") or {}).items())
        )
        return [payload.encode("utf-8") if isinstance(payload, str) else payload]

    @staticmethod
    def _respond(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> Iterable[bytes]:
        start_response(f"{status} ERROR", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]


@dataclass
class PollerStats:
    invocations: int = 0
    records: int = 0
    failed_records: int = 0
    crashed_invocations: int = 0
    crashed_records: int = 0  # records of crashed invocations: all of them come back
    cold_starts: int = 0
    last_activity: float = field(default_factory=time.monotonic)


@dataclass(kw_only=True, eq=False)
class SqsEventSource:
    """Polls a queue and invokes ``handler`` like Lambda's SQS event source mapping."""

    queue_url: str
    handler: Handler
    function_name: str
    timeout_seconds: float
    batch_size: int = 10
    concurrency: int = 2
    # With a factory every polling thread is its own execution environment (own module state,
    # as concurrent Lambdas have); without one all threads share ``handler``.
    handler_factory: HandlerFactory | None = None
    crash_point: CrashPoint | None = None
    # Entered around each polling thread's loop: its calls (and the handler's) use the role.
    execution_role: Callable[[], AbstractContextManager[Any]] | None = None
    # The mapping's state: while disabled nothing is received (messages stay queued).
    enabled: Callable[[], bool] = lambda: True
    stats: PollerStats = field(default_factory=PollerStats, init=False)
    _worker_handlers: dict[int, Handler] = field(default_factory=dict, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False, repr=False)
    _busy: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._busy > 0

    def reset_workers(self) -> None:
        """Discard every execution environment: the next invocations cold-start (a redeploy)."""
        with self._lock:
            self._worker_handlers.clear()

    def _handler_for(self, index: int) -> Handler:
        if self.handler_factory is None:
            return self.handler
        with self._lock:
            handler = self._worker_handlers.get(index)
        if handler is None:
            handler = self.handler_factory(index)
            with self._lock:
                self._worker_handlers[index] = handler
            self.stats.cold_starts += 1
        return handler

    def start(self) -> None:
        for index in range(self.concurrency):
            thread = threading.Thread(
                target=self._run, args=(index,), name=f"sqs-{self.function_name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self, index: int = 0) -> None:
        with self.execution_role() if self.execution_role is not None else nullcontext():
            self._poll(index)

    def _poll(self, index: int) -> None:
        sqs = aws.client("sqs")
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        while not self._stop.is_set():
            if not self.enabled():
                self._stop.wait(EMPTY_POLL_PAUSE_SECONDS)
                continue
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.batch_size,
                    # Short polls: moto's long poll spins a CPU while a FIFO queue's only visible
                    # messages belong to groups in flight, starving every other process.
                    WaitTimeSeconds=0,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                logger.exception("receive failed")
                time.sleep(0.5)
                continue
            if messages:
                self._invoke(sqs, arn, messages, index)
            else:
                self._stop.wait(EMPTY_POLL_PAUSE_SECONDS)

    def _invoke(self, sqs: Any, arn: str, messages: list[dict[str, Any]], index: int = 0) -> None:
        with self._lock:
            self._busy += 1
        try:
            event = {"Records": [self._record(m, arn) for m in messages]}
            handler = self._handler_for(index)
            crash_after = self.crash_point(len(messages)) if self.crash_point is not None else None
            try:
                if crash_after is not None:
                    # Process the first records for real, then die before answering: nothing is
                    # deleted and every message of the batch reappears after its visibility timeout.
                    if crash_after:
                        handler(
                            {"Records": event["Records"][:crash_after]},
                            LambdaContext(self.function_name, self.timeout_seconds),
                        )
                    raise WorkerKilled(f"crash injected after {crash_after} of {len(messages)} records")
                result = handler(event, LambdaContext(self.function_name, self.timeout_seconds)) or {}
            except (Exception, WorkerKilled) as exc:
                if isinstance(exc, WorkerKilled):
                    logger.info("sync worker killed", extra={"detail": str(exc)})
                    with self._lock:  # a dead environment is not reused: the next one cold-starts
                        self._worker_handlers.pop(index, None)
                else:
                    logger.exception("sync invocation crashed")
                self.stats.crashed_invocations += 1
                self.stats.crashed_records += len(messages)
                return
            failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            self.stats.invocations += 1
            self.stats.records += len(messages)
            self.stats.failed_records += len(failed)
        finally:
            self.stats.last_activity = time.monotonic()
            with self._lock:
                self._busy -= 1

    @staticmethod
    def _record(message: dict[str, Any], arn: str) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attributes.get("SenderId", "sandbox"),
                "ApproximateFirstReceiveTimestamp": attributes.get(
                    "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                ),
                "MessageGroupId": attributes.get("MessageGroupId", ""),
                "MessageDeduplicationId": attributes.get("MessageDeduplicationId", ""),
                "SequenceNumber": attributes.get("SequenceNumber", "0"),
            },
            "messageAttributes": {
                key: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType", "String")}
                for key, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": "ap-southeast-2",
        }
