"""The whole product on 127.0.0.1: moto (AWS), the Xero and Ignition emulators, an API Gateway
front for the ingest handler, and an SQS event source driving the sync handler.

The handlers are the real Lambda functions, built by their factories from each function's
environment exactly as the CDK stack sets it (the synthesized template); only the endpoints differ.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from functions.entry import use_powertools_switches
from sandbox.aws import MotoServer, SandboxResources, create_resources, point_boto3_at
from sandbox.clock import Clock
from sandbox.controls import ControlNames, ControlWatcher, create_controls
from sandbox.faults import AwsFaultProfile, AwsFaults
from sandbox.iam import Enforcer, RolePolicy, acting_as, as_function, register, unregister
from sandbox.ignition_emulator import IgnitionEmulator
from sandbox.ignition_mcp import IgnitionMcpEmulator
from sandbox.ignition_mcp import runtime_config as ignition_mcp_config
from sandbox.runtime import ApiGatewayFront, Handler, LambdaContext, SqsEventSource
from sandbox.server import RunningServer, serve_in_thread
from sandbox.xero_emulator import XeroEmulator
from shared import aws
from shared.config import (
    EnvironmentSettings,
    IngestSettings,
    IntegrationConfig,
    PollSettings,
    ReconcileSettings,
    SyncSettings,
    WebhookVerification,
    XeroWebhookSettings,
)
from shared.store.dead_letter_queue import peek_dead_letters

if TYPE_CHECKING:
    from functions.ingest.handler import IngestHandler
    from functions.poll.handler import PollHandler
    from functions.reconcile.handler import ReconcileHandler
    from functions.sync.handler import SyncHandler
    from functions.xero_webhook.handler import XeroWebhookHandler

logger = logging.getLogger(__name__)
S = TypeVar("S", bound=EnvironmentSettings)

SYNC_TIMEOUT_SECONDS = 60
RECONCILE_TIMEOUT_SECONDS = 900  # the reconcile function's Lambda timeout (15 minutes)
POLL_TIMEOUT_SECONDS = 90  # the poll function's (infra/functions.py)
WEBHOOK_SECRET = "sandbox-webhook-secret"  # a sandbox-only value, printed for the user
XERO_WEBHOOK_KEY = "sandbox-xero-webhook-key"  # the key Xero would show for the webhook
# What the sandbox sets in each function's environment from the template: its client's name and
# configuration (the emulators' URLs).
SANDBOX_VARIABLES = ("CLIENT_NAME", "INTEGRATION_CONFIG")


@dataclass
class SandboxOptions:
    # The client's budget; the emulator enforces Xero's real limits unless xero_limits says otherwise.
    xero_calls_per_minute: int = 55
    xero_calls_per_day: int = 4_800
    xero_limits: dict[str, int] | None = None
    max_inline_wait_seconds: float = 20.0
    visibility_timeout: int = 30
    # As deployed (infra/config.py): a backstop; the sync's retry rules park events with a reason.
    max_receive_count: int = 1_000
    sync_concurrency: int = 2
    log_level: str = "WARNING"
    prefix: str = "sandbox"
    # Merged section by section into the integration config ({"xero": {"timeout_seconds": 1}}).
    extra_config: dict[str, Any] = field(default_factory=dict)
    # The sync function's timeout as its context reports it (Powertools bounds IN_PROGRESS
    # idempotency records by it); keep visibility_timeout >= it, as AWS requires.
    sync_timeout_seconds: float = SYNC_TIMEOUT_SECONDS
    sync_batch_size: int = 10
    # Each polling thread its own execution environment (its own handler built by the factory, so
    # its own token cache, batch processor and clients), as concurrent Lambdas are. Off: one shared.
    isolated_sync_workers: bool = True
    # Seconds between scheduled reconciliations (as EventBridge runs them in AWS); None: only on demand.
    reconcile_every: float | None = None
    # Each function's AWS calls checked against its own role in the template (sandbox.iam): a call
    # outside its policy fails with AccessDenied, as in AWS.
    enforce_iam: bool = True
    # The Xero organisation's country profile (tax rates, accounts, base currency): AU, NZ or UK.
    xero_country: str = "AU"
    # runtime.ignition.sources: without "webhook" the Ignition emulator delivers no webhook at all.
    ignition_sources: tuple[str, ...] = ("webhook", "poll")
    # Seconds between poller runs (the EventBridge schedule in AWS); None: only on demand (run_poll).
    poll_every: float | None = None
    # runtime.xero_to_ignition: marked Xero drafts become Ignition drafts (docs/xero-to-ignition.md).
    xero_to_ignition: bool = False


class PeriodicRunner:
    """Runs ``job`` every ``seconds`` on a daemon thread, like an EventBridge schedule: a run that
    fails is logged and the schedule carries on."""

    def __init__(
        self,
        job: Callable[[], object],
        seconds: float,
        name: str = "reconcile",
        enabled: Callable[[], bool] = lambda: True,
    ) -> None:
        self._job = job
        # The rule's state: a disabled rule invokes nothing (the run is skipped, not queued).
        self._enabled = enabled
        self._seconds = seconds
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-schedule", daemon=True)
        self.runs = 0
        self.failures = 0
        self.skipped = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            if not self._enabled():
                self.skipped += 1
                continue
            try:
                self._job()
                self.runs += 1
            except Exception:  # a failed run must not end the schedule; the next one retries
                self.failures += 1
                logger.exception("scheduled run failed", extra={"schedule": self._name})


class Sandbox:
    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.clock = Clock()
        self.webhook = WebhookVerification()
        self.xero = XeroEmulator(clock=self.clock, country=self.options.xero_country)
        # A generous delivery timeout: on a loaded machine the first ingest call can be slow, and a
        # timed-out delivery is a lost webhook the tests did not ask for.
        self.ignition = IgnitionEmulator(
            clock=self.clock, webhook_secret=WEBHOOK_SECRET, webhook=self.webhook, delivery_timeout_seconds=60
        )
        # Ignition's MCP server (Xero -> Ignition), mounted at {ignition_url}/mcp on the same emulator.
        self.ignition_mcp = IgnitionMcpEmulator(self.ignition)
        self.moto = MotoServer()
        self._servers: list[RunningServer] = []
        self.resources: SandboxResources | None = None
        self.poller: SqsEventSource | None = None
        self.ingest: IngestHandler | None = None
        self.sync: SyncHandler | None = None
        self.front: ApiGatewayFront | None = None
        self.reconcile: ReconcileHandler | None = None
        self.reconcile_schedule: PeriodicRunner | None = None
        self.poll: PollHandler | None = None
        self.poll_schedule: PeriodicRunner | None = None
        self.xero_webhook: XeroWebhookHandler | None = None
        self.function_environment: dict[str, str] = {}
        self.aws_faults = AwsFaults()
        self.iam: Enforcer | None = None
        self.controls = ControlNames.for_prefix(self.options.prefix)
        self.control_watcher: ControlWatcher | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Sandbox:
        self.moto.start()
        point_boto3_at(self.moto.url)
        xero_server = serve_in_thread("xero", self.xero.app)
        ignition_server = serve_in_thread("ignition", self.ignition.app)
        self._servers += [xero_server, ignition_server]
        if self.options.xero_limits:
            self.set_xero_limits(**self.options.xero_limits)

        self.resources = create_resources(
            self.options.prefix,
            visibility_timeout=self.options.visibility_timeout,
            max_receive_count=self.options.max_receive_count,
            secrets=self._secrets(),
        )
        create_controls(
            self.controls, {"reconcile": self.options.reconcile_every, "poll": self.options.poll_every}
        )
        self.control_watcher = ControlWatcher(self.controls)
        self.control_watcher.start()
        self.function_environment = self._function_environment(xero_server.url, ignition_server.url)
        use_powertools_switches(self.function_environment)
        from functions.ingest.handler import IngestHandler
        from functions.xero_webhook.handler import XeroWebhookHandler

        self.ingest = IngestHandler(self.settings("ingest", IngestSettings), self.config)
        self.sync = self._sync_worker(0)
        self.xero_webhook = XeroWebhookHandler(
            self.settings("xero_webhook", XeroWebhookSettings), self.config
        )
        if self.options.enforce_iam:
            self.iam = Enforcer.for_stack(self.resources.stack, self.resources.functions)
            register(self.iam)

        self.front = ApiGatewayFront(
            {
                ("POST", "/webhooks/ignition"): ("ingest", self.as_function("ingest", self.ingest)),
                ("POST", "/webhooks/xero"): (
                    "xero-webhook",
                    self.as_function("xero_webhook", self.xero_webhook),
                ),
            }
        )
        front = serve_in_thread("api", self.front)
        self._servers.append(front)
        if "webhook" in self.options.ignition_sources:
            self.ignition.set_webhook_url(f"{front.url}/webhooks/ignition")
        self.poller = SqsEventSource(
            queue_url=self.resources.queue_url,
            handler=self.sync,
            function_name="sync",
            timeout_seconds=self.options.sync_timeout_seconds,
            concurrency=self.options.sync_concurrency,
            batch_size=self.options.sync_batch_size,
            handler_factory=self._sync_worker if self.options.isolated_sync_workers else None,
            crash_point=self.aws_faults.crash_point,
            # The event source mapping polls with the function's role, as in AWS.
            execution_role=lambda: acting_as(self.role("sync")),
            enabled=self.control_watcher.sync_enabled,
        )
        self.poller.start()
        from functions.poll.handler import PollHandler
        from functions.reconcile.handler import ReconcileHandler

        self.reconcile = ReconcileHandler(self.settings("reconcile", ReconcileSettings), self.config)
        if self.options.reconcile_every:
            self.reconcile_schedule = PeriodicRunner(
                self.run_reconcile,
                self.options.reconcile_every,
                enabled=lambda: self._schedule_enabled("reconcile"),
            )
            self.reconcile_schedule.start()
        self.poll = PollHandler(self.settings("poll", PollSettings), self.config)
        if self.options.poll_every and "poll" in self.options.ignition_sources:
            self.poll_schedule = PeriodicRunner(
                self.run_poll,
                self.options.poll_every,
                name="poll",
                enabled=lambda: self._schedule_enabled("poll"),
            )
            self.poll_schedule.start()
        return self

    def _schedule_enabled(self, schedule: str) -> bool:
        return self.control_watcher is None or self.control_watcher.schedule_enabled(schedule)

    def run_poll(self) -> dict[str, Any]:
        """One poller run through the real handler, under its own role, as the schedule runs it."""
        assert self.poll is not None
        scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        with acting_as(self.role("poll")):
            result: dict[str, Any] = self.poll(scheduled, LambdaContext("poll", POLL_TIMEOUT_SECONDS))
        return result

    def run_reconcile(self, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """One reconciliation through the real handler: ``event`` as on demand, or the schedule's."""
        assert self.reconcile is not None
        scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        with acting_as(self.role("reconcile")):
            result: dict[str, Any] = self.reconcile(
                event or scheduled, LambdaContext("reconcile", RECONCILE_TIMEOUT_SECONDS)
            )
        return result

    @property
    def config(self) -> IntegrationConfig:
        """The integration configuration the functions are deployed with (``INTEGRATION_CONFIG``)."""
        return IntegrationConfig.from_env(self.function_environment)

    def settings(self, function: str, settings: type[S]) -> S:
        """``function``'s settings (a directory of functions/) from its own environment in the
        template, with the sandbox's client name and configuration."""
        assert self.resources is not None
        sandbox = {key: self.function_environment[key] for key in SANDBOX_VARIABLES}
        return settings.from_env({**self.resources.functions[function].environment, **sandbox})

    def role(self, function: str) -> RolePolicy | None:
        """The IAM role ``function`` (a directory of functions/) runs under; None when the sandbox
        does not enforce IAM."""
        return self.iam.roles[function] if self.iam is not None else None

    def as_function(self, function: str, handler: Handler) -> Handler:
        wrapped: Handler = as_function(self.role(function), handler)
        return wrapped

    def stop(self) -> None:
        if self.poll_schedule is not None:
            self.poll_schedule.stop()
        if self.reconcile_schedule is not None:
            self.reconcile_schedule.stop()
        if self.poller is not None:
            self.poller.stop()
        if self.control_watcher is not None:
            self.control_watcher.stop()
        self.aws_faults.uninstall()
        if self.iam is not None:
            unregister(self.iam)
        for server in reversed(self._servers):
            server.stop()
        self.moto.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what users and tests see ----------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self._servers[2].url

    @property
    def xero_url(self) -> str:
        return self._servers[0].url

    @property
    def ignition_url(self) -> str:
        return self._servers[1].url

    def info(self) -> dict[str, Any]:
        return {
            "webhook_url": f"{self.api_url}/webhooks/ignition",
            "webhook_secret": WEBHOOK_SECRET,
            "signature_header": self.webhook.header,
            "xero_url": self.xero_url,
            "ignition_url": self.ignition_url,
            "aws_endpoint_url": self.moto.url,
            "xero_webhook_url": f"{self.api_url}/webhooks/xero",
            "xero_webhook_key": XERO_WEBHOOK_KEY,
            # What a function sees (resource names, secret ids, INTEGRATION_CONFIG): lets the CLI and
            # tests in another process act on this sandbox exactly as the functions do.
            "environment": self.function_environment,
            # What `python -m cli pause` switches (sandbox/controls.py).
            "controls": {
                "event_source_parameter": self.controls.event_source_parameter,
                "schedule_rules": self.controls.schedule_rules,
            },
        }

    def reconfigure(self, **config: Any) -> None:
        """Change the integration's configuration and cold-start the sync function with it, as a
        redeploy does (e.g. a mapping rule fixed after Xero refused it)."""
        assert self.poller is not None
        current = json.loads(self.function_environment["INTEGRATION_CONFIG"])
        for section, values in config.items():
            current[section] = {**current.get(section, {}), **values}
        validated = IntegrationConfig.model_validate(current)
        self.function_environment["INTEGRATION_CONFIG"] = validated.model_dump_json()
        self.sync = self._sync_worker(0)
        self.poller.handler = self.sync
        self.poller.reset_workers()

    def set_xero_to_ignition(self, *, enabled: bool) -> None:
        """Turn Xero -> Ignition drafts on or off and cold-start the three functions that read it
        (the Xero webhook queues invoice events, the sync drafts marked invoices, the reconciliation
        reports those without a draft), as a redeploy does."""
        assert self.front is not None
        self.reconfigure(xero_to_ignition={"enabled": enabled})
        from functions.reconcile.handler import ReconcileHandler
        from functions.xero_webhook.handler import XeroWebhookHandler

        self.reconcile = ReconcileHandler(self.settings("reconcile", ReconcileSettings), self.config)

        self.xero_webhook = XeroWebhookHandler(
            self.settings("xero_webhook", XeroWebhookSettings), self.config
        )
        self.front.routes[("POST", "/webhooks/xero")] = (
            "xero-webhook",
            self.as_function("xero_webhook", self.xero_webhook),
        )

    def set_webhook_verification(self, verification: WebhookVerification) -> WebhookVerification:
        """Change how Ignition's webhooks are verified (``runtime.ignition.webhook``, e.g. the
        shared-token scheme a Zapier bridge needs) and cold-start the ingest function with it, as a
        redeploy does; the emulator signs its own deliveries the same way. Returns the previous
        verification, to restore it."""
        assert self.front is not None
        previous = self.webhook
        current = json.loads(self.function_environment["INTEGRATION_CONFIG"])
        current["ignition"] = {**current["ignition"], "webhook": verification.model_dump()}
        validated = IntegrationConfig.model_validate(current)
        self.function_environment["INTEGRATION_CONFIG"] = validated.model_dump_json()
        self.webhook = verification
        self.ignition._webhook = verification  # the emulator signs as the ingest verifies
        from functions.ingest.handler import IngestHandler

        self.ingest = IngestHandler(self.settings("ingest", IngestSettings), self.config)
        self.front.routes[("POST", "/webhooks/ignition")] = (
            "ingest",
            self.as_function("ingest", self.ingest),
        )
        return previous

    def set_aws_faults(self, **profile: Any) -> AwsFaultProfile:
        """Crashes of the sync worker and mapping-write conflicts (``sandbox.faults.AwsFaults``);
        no arguments clears them."""
        parsed = AwsFaultProfile.parse(profile)
        if parsed.kill_rate or parsed.conflict_rate:
            self.aws_faults.install()
        self.aws_faults.configure(parsed)
        return parsed

    def set_xero_limits(self, **limits: int) -> None:
        with self.xero.app.test_client() as admin:
            response = admin.post("/_emulator/limits", json=limits)
            if response.status_code >= 400:
                raise ValueError(f"emulator refused limits {limits}: {response.get_data(as_text=True)}")

    def queue_depth(self, url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages in the sync queue, or in ``url``."""
        assert self.resources is not None
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=url or self.resources.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every message in the DLQ with its failure reason (received and made visible again).

        Read as the operator's peek reads it: each received message stays hidden until all are
        read, so the next receive returns others (received with no visibility timeout, the FIFO
        queue returned its first ten again and again, and an eleventh letter was never seen)."""
        assert self.resources is not None
        return [
            {"body": json.loads(letter.body), "category": letter.category, "reason": letter.reason}
            for letter in peek_dead_letters(self.resources.dlq_url, limit=10_000)
        ]

    def wait_until_idle(self, timeout: float = 60.0, settle: float = 0.3) -> None:
        """Until the sync queue is empty and no invocation is running (for ``settle`` seconds)."""
        assert self.poller is not None
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            visible, in_flight = self.queue_depth()
            front_busy = self.front is not None and self.front.busy
            if visible == 0 and in_flight == 0 and not self.poller.busy and not front_busy:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return
            else:
                quiet_since = None
            time.sleep(0.05)
        raise TimeoutError(f"sandbox still busy after {timeout} s (queue: {self.queue_depth()})")

    # -- set-up --------------------------------------------------------------------------------

    def _secrets(self) -> dict[str, str]:
        now = self.clock.now()
        xero_tokens = self.xero.issue_token_set()
        ignition_tokens = self.ignition.issue_token_set()
        return {
            "xero-client": json.dumps(
                {"client_id": "sandbox-client-id", "client_secret": "sandbox-client-secret"}
            ),
            "xero-token": json.dumps(
                {
                    "access_token": xero_tokens["access_token"],
                    "refresh_token": xero_tokens["refresh_token"],
                    "expires_at": (now + timedelta(seconds=int(xero_tokens["expires_in"]))).isoformat(),
                    "scope": xero_tokens.get("scope", ""),
                    "tenant_id": self.xero.tenant_id,
                    "extra": {"tenant_name": self.xero.tenant_name},
                }
            ),
            "ignition-webhook": WEBHOOK_SECRET,
            # Read only where runtime.xero_to_ignition is enabled (the template has the secret then).
            "ignition-mcp": self.ignition_mcp.sandbox_secret(),
            # Tenant-scoped: the emulator's organisation is the connected one.
            "xero-webhook": json.dumps({"webhook_key": XERO_WEBHOOK_KEY, "tenant_id": self.xero.tenant_id}),
            "ignition-api": json.dumps(
                {
                    "client_id": "sandbox-ignition-client",
                    "client_secret": "sandbox-ignition-secret",
                    "access_token": ignition_tokens["access_token"],
                    "refresh_token": ignition_tokens["refresh_token"],
                    "expires_at": (now + timedelta(seconds=int(ignition_tokens["expires_in"]))).isoformat(),
                }
            ),
        }

    def _function_environment(self, xero_url: str, ignition_url: str) -> dict[str, str]:
        assert self.resources is not None
        config = IntegrationConfig.model_validate(
            {
                "xero": {
                    "api_url": xero_url,
                    "identity_url": xero_url,
                    "login_url": xero_url,
                    "calls_per_minute": self.options.xero_calls_per_minute,
                    "calls_per_day": self.options.xero_calls_per_day,
                    "max_inline_wait_seconds": self.options.max_inline_wait_seconds,
                },
                "ignition": {
                    "api_url": f"{ignition_url}/external/api/v1",
                    "token_url": f"{ignition_url}/oauth2/token",
                    "webhook": self.webhook.model_dump(),
                    "sources": list(self.options.ignition_sources),
                    "mcp": ignition_mcp_config(ignition_url),
                },
                "xero_to_ignition": {"enabled": self.options.xero_to_ignition, "app_url": ignition_url},
            }
        )
        if self.options.extra_config:
            merged = config.model_dump()
            for section, values in self.options.extra_config.items():
                current = merged.get(section)
                merged[section] = {**current, **values} if isinstance(current, dict) else values
            config = IntegrationConfig.model_validate(merged)
        # Every variable as the template sets it (resource names resolved to the sandbox's);
        # only the client's name, its configuration (emulator URLs) and logging are the sandbox's.
        return {
            **self.resources.environment(),
            "CLIENT_NAME": self.options.prefix,
            "INTEGRATION_CONFIG": config.model_dump_json(),
            "POWERTOOLS_SERVICE_NAME": "sandbox",
            "POWERTOOLS_METRICS_NAMESPACE": f"IgnitionXeroSync/{self.options.prefix}",
            "POWERTOOLS_LOG_LEVEL": self.options.log_level,
            # EMF metrics would flood the terminal; CloudWatch is where they are read.
            "POWERTOOLS_METRICS_DISABLED": "true",
        }

    def _sync_worker(self, index: int) -> SyncHandler:
        """A cold start of the sync function in its own execution environment (``index``: the
        polling thread's): a handler of its own, built from the current configuration."""
        from functions.sync.handler import SyncHandler

        return SyncHandler(self.settings("sync", SyncSettings), self.config)
