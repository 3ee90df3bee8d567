"""The sandbox's AWS is the synthesized CDK template: one description of the infrastructure.

``synthesized_template`` runs ``app.py`` (as ``cdk synth`` does, without asset bundling: the
sandbox imports the handlers from the work tree) and caches the template under ``.build/`` keyed by
a hash of everything the synthesis reads, so only a change to ``infra/`` or the client config pays
for a new synth. ``SandboxStack`` builds the stack's tables, queues, buckets, secrets and topics in
moto from the template's own properties (key schemas, GSIs, TTL, FIFO, visibility, redrive,
versioning), resolves every function's environment variables and IAM policy statements against
what it created, and hands both to the sandbox: names and settings cannot drift from what
``cdk deploy`` creates.

Physical names differ (CloudFormation generates them in AWS): ``<prefix>-<logical id>``, and
secrets ``<prefix>/<last part of the template's name>``. Only the settings the sandbox compresses
in time (the sync queue's visibility timeout and max receive count) may be overridden, by name.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import aws

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = PROJECT_ROOT / ".build"
TEMPLATE_CLIENT = "example"
# Merged into the template client's runtime section before synthesis: the stack then holds every
# optional part the sandbox can switch on at run time (Xero -> Ignition's MCP secret and grants),
# while the sandbox's own INTEGRATION_CONFIG keeps the feature off unless asked for
# (``python -m sandbox serve --xero-to-ignition``, ``Sandbox.set_xero_to_ignition``).
SANDBOX_RUNTIME: dict[str, Any] = {"xero_to_ignition": {"enabled": True}}
REGION = "ap-southeast-2"
ACCOUNT = "123456789012"  # moto's default account
PARTITION = "aws"
# functions.<name>.handler.handler -> <name>
_HANDLER = re.compile(r"^functions\.(?P<name>[a-z_]+)\.handler\.handler$")
# CDK appends an 8-hex-digit hash of the construct path to every logical id.
_LOGICAL_HASH = re.compile(r"[0-9A-F]{8}$")


class TemplateError(RuntimeError):
    """The CDK app could not be synthesized, or the template uses what the sandbox cannot build."""


# -- synthesis and its cache ----------------------------------------------------------------------


def _synth_inputs(client: str) -> list[Path]:
    """Every file the synthesis reads: the app, infra/, the client config and the shared modules
    that infra/ imports (by name; a change anywhere else in shared/ cannot change the template)."""
    files = [PROJECT_ROOT / "app.py", PROJECT_ROOT / "cdk.json", PROJECT_ROOT / "clients" / f"{client}.json"]
    files += sorted((PROJECT_ROOT / "infra").rglob("*.py"))
    imported: set[str] = set()
    for path in files:
        if path.suffix == ".py":
            imported.update(re.findall(r"^from (shared(?:\.\w+)+) import", path.read_text(), re.MULTILINE))
    for module in sorted(imported):
        candidate = PROJECT_ROOT.joinpath(*module.split(".")).with_suffix(".py")
        if candidate.is_file():
            files.append(candidate)
    return files


def template_cache_key(client: str = TEMPLATE_CLIENT) -> str:
    digest = hashlib.sha256()
    for path in _synth_inputs(client):
        digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    # The CDK library version changes what the same code synthesizes.
    digest.update((PROJECT_ROOT / "requirements-dev.txt").read_bytes())
    digest.update(json.dumps(SANDBOX_RUNTIME, sort_keys=True).encode())
    return digest.hexdigest()[:20]


def synthesized_template(client: str = TEMPLATE_CLIENT, cache_dir: Path = CACHE_DIR) -> dict[str, Any]:
    """The stack template ``cdk synth -c client=<client>`` produces, from the cache when current."""
    cached = cache_dir / f"sandbox-template-{client}-{template_cache_key(client)}.json"
    try:
        loaded: dict[str, Any] = json.loads(cached.read_text())
        return loaded
    except FileNotFoundError:
        pass
    cache_dir.mkdir(parents=True, exist_ok=True)
    # One synthesis at a time: parallel test workers wait for the first one's template (a synth
    # takes ~10 s of CPU, and the machine running them may have two cores).
    with (cache_dir / f"sandbox-template-{client}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            loaded = json.loads(cached.read_text())
            return loaded
        except FileNotFoundError:
            return _synthesize(client, cache_dir, cached)


def _sandbox_client(client: str, clients_dir: Path) -> None:
    """clients/<client>.json with ``SANDBOX_RUNTIME`` merged into its runtime, in ``clients_dir``."""
    data = json.loads((PROJECT_ROOT / "clients" / f"{client}.json").read_text())
    runtime = data.setdefault("runtime", {})
    for section, values in SANDBOX_RUNTIME.items():
        runtime[section] = {**runtime.get(section, {}), **values}
    (clients_dir / f"{client}.json").write_text(json.dumps(data))


def _synthesize(client: str, cache_dir: Path, cached: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="synth-") as outdir:
        clients_dir = Path(outdir) / "clients"
        clients_dir.mkdir()
        _sandbox_client(client, clients_dir)
        env = {**os.environ, "CDK_OUTDIR": outdir, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
        # The sandbox's moto endpoint must not leak into the CDK's own AWS lookups.
        env.pop("AWS_ENDPOINT_URL", None)
        context = [f"client={client}", f"clients_dir={clients_dir}", "bundle=false"]
        command = ["app.py", *(part for pair in context for part in ("-c", pair))]
        result = subprocess.run(  # noqa: S603 - our own interpreter and app
            [sys.executable, *command],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise TemplateError(f"cdk synth of client {client!r} failed:\n{result.stderr[-4000:]}")
        (path,) = Path(outdir).glob("*.template.json")
        text = path.read_text()
    # Atomic: other processes read the cache without taking the lock.
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(cached)
    for stale in cache_dir.glob(f"sandbox-template-{client}-*.json"):
        if stale != cached:
            stale.unlink(missing_ok=True)
    template: dict[str, Any] = json.loads(text)
    return template


# -- building the stack in moto -------------------------------------------------------------------


@dataclass
class Physical:
    """What ``Ref`` and ``Fn::GetAtt`` return for one created resource."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # functions/<name>/
    logical_id: str
    role_logical_id: str
    environment: dict[str, str]
    # The role's identity-based policy statements, intrinsics resolved to the sandbox's ARNs.
    statements: list[dict[str, Any]]
    timeout_seconds: int


def short_id(logical_id: str) -> str:
    return _LOGICAL_HASH.sub("", logical_id)


class SandboxStack:
    """The template's resources, created in the moto server boto3 points at."""

    BUILT = (
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::S3::Bucket",
        "AWS::SecretsManager::Secret",
        "AWS::SNS::Topic",
    )

    def __init__(self, template: dict[str, Any], prefix: str) -> None:
        self.template = template
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        self.prefix = prefix
        self.physical: dict[str, Physical] = {}
        self.table_hash_keys: dict[str, str] = {}  # table name -> partition key attribute
        self.secret_arns: dict[str, str] = {}  # secret name -> ARN
        self._renamed: dict[str, str] = {}  # a literal name in the template -> the sandbox's

    # -- queries ---------------------------------------------------------------------------------

    def of_type(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == type_name}

    def logical_id_of_env(self, variable: str) -> str:
        """The resource a function's environment variable names by ``Ref`` (e.g. SYNC_QUEUE_URL)."""
        for function in self.of_type("AWS::Lambda::Function").values():
            value = function["Properties"].get("Environment", {}).get("Variables", {}).get(variable)
            if isinstance(value, dict) and "Ref" in value:
                return str(value["Ref"])
        raise TemplateError(f"no function environment variable {variable} refers to a resource")

    # -- create ----------------------------------------------------------------------------------

    def create(
        self, *, secrets: dict[str, str], queue_overrides: dict[str, dict[str, str]] | None = None
    ) -> None:
        """Create every resource the functions use. ``secrets``: value by the last part of the
        secret's name ("xero-token"); ``queue_overrides``: attributes by queue logical id."""
        overrides = queue_overrides or {}
        for logical_id, resource in self.of_type("AWS::DynamoDB::Table").items():
            self._table(logical_id, resource["Properties"])
        for logical_id, resource in self.of_type("AWS::S3::Bucket").items():
            self._bucket(logical_id, resource["Properties"])
        queues = self.of_type("AWS::SQS::Queue")
        for logical_id, resource in queues.items():
            self._queue(logical_id, resource["Properties"], overrides.get(logical_id, {}))
        # Redrive policies name other queues: set once every queue exists.
        for logical_id, resource in queues.items():
            redrive = resource["Properties"].get("RedrivePolicy")
            if redrive is not None:
                policy = self.resolve(redrive)
                extra = overrides.get(logical_id, {})
                if "maxReceiveCount" in extra:
                    policy["maxReceiveCount"] = int(extra["maxReceiveCount"])
                aws.client("sqs").set_queue_attributes(
                    QueueUrl=self.physical[logical_id].ref, Attributes={"RedrivePolicy": json.dumps(policy)}
                )
        for logical_id, resource in self.of_type("AWS::SecretsManager::Secret").items():
            self._secret(logical_id, resource["Properties"], secrets)
        for logical_id in self.of_type("AWS::SNS::Topic"):
            name = f"{self.prefix}-{short_id(logical_id)}"
            arn = aws.client("sns").create_topic(Name=name)["TopicArn"]
            self.physical[logical_id] = Physical(arn, {"TopicName": name, "TopicArn": arn})
        for logical_id in self.of_type("AWS::Logs::LogGroup"):
            name = f"/aws/lambda/{self.prefix}-{short_id(logical_id)}"
            arn = f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
            self.physical[logical_id] = Physical(name, {"Arn": arn})
        for logical_id in self.of_type("AWS::IAM::Role"):
            name = f"{self.prefix}-{short_id(logical_id)}"
            self.physical[logical_id] = Physical(name, {"Arn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"})

    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        name = f"{self.prefix}-{short_id(logical_id)}"
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
            if key in props:
                request[key] = props[key]
        if request["BillingMode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        ddb = aws.client("dynamodb")
        described = ddb.create_table(**request)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        (hash_key,) = [k["AttributeName"] for k in props["KeySchema"] if k["KeyType"] == "HASH"]
        self.table_hash_keys[name] = hash_key
        attributes = {"Arn": described["TableArn"]}
        if "LatestStreamArn" in described:
            attributes["StreamArn"] = described["LatestStreamArn"]
        self.physical[logical_id] = Physical(name, attributes)

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        name = f"{self.prefix}-{short_id(logical_id)}".lower()[:63]
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        self.physical[logical_id] = Physical(
            name, {"Arn": f"arn:{PARTITION}:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}
        )

    _QUEUE_ATTRIBUTES = (
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
        "MaximumMessageSize",
        "SqsManagedSseEnabled",
    )

    def _queue(self, logical_id: str, props: dict[str, Any], overrides: dict[str, str]) -> None:
        fifo = bool(props.get("FifoQueue"))
        name = f"{self.prefix}-{short_id(logical_id)}" + (".fifo" if fifo else "")
        attributes = {
            key: str(self.resolve(props[key])).lower() if isinstance(props[key], bool) else str(props[key])
            for key in self._QUEUE_ATTRIBUTES
            if key in props
        }
        attributes.update({k: v for k, v in overrides.items() if k != "maxReceiveCount"})
        sqs = aws.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.physical[logical_id] = Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _secret(self, logical_id: str, props: dict[str, Any], values: dict[str, str]) -> None:
        template_name = str(props["Name"])
        key = template_name.rsplit("/", 1)[-1]
        name = f"{self.prefix}/{key}"
        request: dict[str, Any] = {"Name": name}
        if key in values:
            request["SecretString"] = values[key]
        arn = aws.client("secretsmanager").create_secret(**request)["ARN"]
        self._renamed[template_name] = name
        self.secret_arns[name] = arn
        self.physical[logical_id] = Physical(arn, {"Id": arn})

    # -- intrinsics ------------------------------------------------------------------------------

    _PSEUDO = {
        "AWS::Partition": PARTITION,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NoValue": "",
    }

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by the sandbox's value. A resource the
        sandbox does not build resolves to a name that matches nothing (an ARN under it is never
        granted, as in AWS a grant on another resource is none)."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, str):
            return self._renamed.get(value, value)
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                if argument in self._PSEUDO:
                    return self._PSEUDO[argument]
                if argument == "AWS::StackName":
                    return self.prefix
                found = self.physical.get(argument)
                return found.ref if found else f"unbuilt:{argument}"
            if function == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                found = self.physical.get(logical_id)
                if found is None or attribute not in found.attributes:
                    return f"arn:unbuilt:{logical_id}.{attribute}"
                return found.attributes[attribute]
            if function == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(self.resolve(p)) for p in parts)
            if function == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if function == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: str(
                        self.resolve(variables[m.group(1)])
                        if m.group(1) in variables
                        else self.resolve(
                            {"Fn::GetAtt": m.group(1)} if "." in m.group(1) else {"Ref": m.group(1)}
                        )
                    ),
                    text,
                )
        return {k: self.resolve(v) for k, v in value.items()}

    # -- functions -------------------------------------------------------------------------------

    def functions(self) -> dict[str, FunctionSpec]:
        """Each Lambda function of ``functions/``: its resolved environment and role statements."""
        found: dict[str, FunctionSpec] = {}
        for logical_id, resource in self.of_type("AWS::Lambda::Function").items():
            props = resource["Properties"]
            match = _HANDLER.match(str(props.get("Handler", "")))
            if match is None:
                continue  # a CDK helper function, not ours
            role = props["Role"]["Fn::GetAtt"][0]
            variables = props.get("Environment", {}).get("Variables", {})
            found[match["name"]] = FunctionSpec(
                name=match["name"],
                logical_id=logical_id,
                role_logical_id=role,
                environment={k: str(self.resolve(v)) for k, v in variables.items()},
                statements=list(self._role_statements(role)),
                timeout_seconds=int(props.get("Timeout", 3)),
            )
        return found

    def _role_statements(self, role_logical_id: str) -> Iterable[dict[str, Any]]:
        role = self.resources[role_logical_id]["Properties"]
        if role.get("ManagedPolicyArns"):
            raise TemplateError(f"{role_logical_id}: managed policies are not modelled by the sandbox")
        for inline in role.get("Policies", []):
            yield from self.resolve(inline["PolicyDocument"]["Statement"])
        for policy in self.of_type("AWS::IAM::Policy").values():
            props = policy["Properties"]
            if {"Ref": role_logical_id} in props.get("Roles", []):
                yield from self.resolve(props["PolicyDocument"]["Statement"])
