"""IAM in the sandbox: each function's AWS calls are checked against its own role's statements.

moto says yes to everything. Here every boto3 call a function makes (through any client: ours,
Powertools', s3transfer's) is translated into the IAM action(s), resource ARN(s) and condition keys
AWS would authorise it by, and evaluated against the statements of that function's role in the
synthesized template (``sandbox.template``). A call no statement allows fails before it reaches
moto with the ``ClientError`` AWS would return (``AccessDenied``/``AccessDeniedException``, 403).

Which function is calling: ``acting_as(role)`` (a context variable) around every invocation and
around the SQS event source's own polling (the event source mapping uses the function's role).
Work a function submits to a thread pool (s3transfer's) carries the role along.
Calls outside any role (the tests, the operator CLI, the sandbox's set-up) are not checked.

Evaluation follows AWS's identity-policy logic: an explicit Deny wins, then any Allow, else an
implicit deny. Actions and ARNs match with ``*``/``?`` wildcards (actions case-insensitively);
conditions ``String(Not)Equals``, ``String(Not)Like`` (with ``ForAllValues:``/``ForAnyValue:``),
``Bool`` and ``Null`` on the keys computed here (``dynamodb:LeadingKeys``, ``s3:prefix``). A
statement with an operator not modelled never allows (the stricter reading).
Resource-based policies (the buckets' and queues' TLS-only Deny) are not evaluated: the sandbox
talks plain HTTP to moto, where AWS would see TLS.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from sandbox.template import ACCOUNT, PARTITION, REGION, FunctionSpec, SandboxStack

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One authorisation AWS makes for a call (a batch or transaction makes several)."""

    action: str
    resource: str
    context: dict[str, list[str]] = field(default_factory=dict)


def _pattern(text: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    # IAM wildcards: * any run of characters (/ included), ? one character; nothing else special.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


@dataclass
class Statement:
    effect: str
    actions: list[re.Pattern[str]]
    resources: list[re.Pattern[str]]
    conditions: dict[str, dict[str, list[str]]]
    source: dict[str, Any]

    @classmethod
    def parse(cls, statement: dict[str, Any]) -> Statement:
        if "NotAction" in statement or "NotResource" in statement or "Principal" in statement:
            raise ValueError(f"statement not modelled by the sandbox: {statement}")
        return cls(
            effect=str(statement.get("Effect", "Allow")),
            actions=[_pattern(a, ignore_case=True) for a in _as_list(statement.get("Action"))],
            resources=[_pattern(r) for r in _as_list(statement.get("Resource"))],
            conditions={
                operator: {key: _as_list(values) for key, values in keys.items()}
                for operator, keys in statement.get("Condition", {}).items()
            },
            source=statement,
        )

    def matches(self, request: Request) -> bool:
        return (
            any(p.match(request.action) for p in self.actions)
            and any(p.match(request.resource) for p in self.resources)
            and all(
                _condition(operator, key, wanted, request.context)
                for operator, keys in self.conditions.items()
                for key, wanted in keys.items()
            )
        )


def _condition(operator: str, key: str, wanted: list[str], context: dict[str, list[str]]) -> bool:
    qualifier, _, test = operator.rpartition(":")
    present = key in context
    values = context.get(key, [])
    if test == "Null":
        return (not present) == (wanted[0].lower() == "true")
    if test == "Bool":
        return present and any(v.lower() == wanted[0].lower() for v in values)
    negated = "Not" in test
    base = test.replace("Not", "").removesuffix("IfExists")
    if base not in ("StringEquals", "StringLike"):
        return False  # not modelled: never satisfied (the stricter reading)
    if test.endswith("IfExists") and not present:
        return True

    def one(value: str) -> bool:
        hit = any((value == w) if base == "StringEquals" else bool(_pattern(w).match(value)) for w in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)  # true for an absent key, as in AWS
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    if not present:
        return negated  # a missing key fails every positive string test
    return any(one(v) for v in values)


class RolePolicy:
    """One function's role: its statements and the decisions made against them."""

    def __init__(self, function: FunctionSpec, role_arn: str) -> None:
        self.function = function.name
        self.role_arn = role_arn
        self.role_name = role_arn.rsplit("/", 1)[-1]
        self.statements = [Statement.parse(s) for s in function.statements]
        self._lock = threading.Lock()
        self.denied: list[Request] = []

    def allows(self, request: Request) -> bool:
        matching = [s for s in self.statements if s.matches(request)]
        return any(s.effect == "Allow" for s in matching) and not any(s.effect == "Deny" for s in matching)

    def revoke(self, action: str, resource_fragment: str = "") -> list[Statement]:
        """Remove ``action`` from every statement whose resources mention ``resource_fragment``;
        returns the statements as they were, for ``restore``."""
        before = list(self.statements)
        changed: list[Statement] = []
        for statement in self.statements:
            resources = _as_list(statement.source.get("Resource"))
            if not any(resource_fragment in r for r in resources):
                changed.append(statement)
                continue
            kept = [a for a in _as_list(statement.source.get("Action")) if a.lower() != action.lower()]
            if kept:
                changed.append(Statement.parse({**statement.source, "Action": kept}))
        self.statements = changed
        return before

    def restore(self, statements: list[Statement]) -> None:
        self.statements = statements

    def record_denial(self, request: Request) -> None:
        with self._lock:
            self.denied.append(request)


_acting: contextvars.ContextVar[RolePolicy | None] = contextvars.ContextVar("sandbox_iam_role", default=None)


@contextmanager
def acting_as(role: RolePolicy | None) -> Iterator[None]:
    """AWS calls in this block (this thread) are made with ``role``'s credentials."""
    token = _acting.set(role)
    try:
        yield
    finally:
        _acting.reset(token)


def as_function(role: RolePolicy | None, handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` invoked with ``role``'s credentials, as Lambda runs it under its execution role."""
    if role is None:
        return handler

    def invoke(*args: Any, **kwargs: Any) -> Any:
        with acting_as(role):
            return handler(*args, **kwargs)

    return invoke


# -- what AWS authorises a call by -------------------------------------------------------------


def _table_arn(name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def _queue_arn(url: str) -> str:
    return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{urlparse(url).path.rstrip('/').rsplit('/', 1)[-1]}"


def _leading_key(item_key: dict[str, Any] | None, hash_key: str | None) -> list[str]:
    if not item_key or hash_key is None or hash_key not in item_key:
        return []
    value = item_key[hash_key]
    return [str(next(iter(value.values())))] if isinstance(value, dict) else [str(value)]


def _query_leading_key(params: dict[str, Any], hash_key: str | None) -> list[str]:
    """The partition key value a Query's key condition names (``pk = :v`` or ``#n = :v``)."""
    if hash_key is None:
        return []
    names = {v: k for k, v in params.get("ExpressionAttributeNames", {}).items()}
    values = params.get("ExpressionAttributeValues", {})
    for left, right in re.findall(r"([#\w]+)\s*=\s*(:\w+)", params.get("KeyConditionExpression", "")):
        if (names.get(hash_key) == left or left == hash_key) and right in values:
            return [str(next(iter(values[right].values())))]
    return []


class Translator:
    """boto3 operation + parameters -> the IAM requests AWS evaluates for it."""

    _DDB_TRANSACT = {
        "Put": "PutItem",
        "Update": "UpdateItem",
        "Delete": "DeleteItem",
        "ConditionCheck": "ConditionCheckItem",
        "Get": "GetItem",
    }
    _SQS_BATCH = {
        "SendMessageBatch": "SendMessage",
        "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    }
    _S3 = {
        "GetObject": "GetObject",
        "HeadObject": "GetObject",
        "PutObject": "PutObject",
        "CreateMultipartUpload": "PutObject",
        "UploadPart": "PutObject",
        "CompleteMultipartUpload": "PutObject",
        "AbortMultipartUpload": "AbortMultipartUpload",
        "DeleteObject": "DeleteObject",
        "GetObjectTagging": "GetObjectTagging",
        "PutObjectTagging": "PutObjectTagging",
    }

    def __init__(self, table_hash_keys: dict[str, str], secret_arns: dict[str, str]) -> None:
        self._hash_keys = table_hash_keys
        self._secret_arns = secret_arns

    def requests(self, service: str, operation: str, params: dict[str, Any]) -> list[Request]:
        method = getattr(self, f"_{service.replace('-', '_')}", None)
        if method is None:
            return [Request(f"{service}:{operation}", "*")]
        found: list[Request] = method(operation, params)
        return found

    def _dynamodb(self, op: str, params: dict[str, Any]) -> list[Request]:
        def one(action: str, table: str, keys: list[str] | None = None, index: str | None = None) -> Request:
            arn = _table_arn(table) + (f"/index/{index}" if index else "")
            return Request(f"dynamodb:{action}", arn, {"dynamodb:LeadingKeys": keys} if keys else {})

        if op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
            table = params["TableName"]
            key = params.get("Item") if op == "PutItem" else params.get("Key")
            return [one(op, table, _leading_key(key, self._hash_keys.get(table)))]
        if op == "Query":
            table = params["TableName"]
            index = params.get("IndexName")
            # A GSI's partition key is another attribute: no leading key computed for it.
            keys = [] if index else _query_leading_key(params, self._hash_keys.get(table))
            return [one(op, table, keys, index)]
        if op == "Scan":
            return [one(op, params["TableName"], None, params.get("IndexName"))]
        if op in ("BatchGetItem", "BatchWriteItem"):
            found = []
            for table, items in params.get("RequestItems", {}).items():
                hash_key = self._hash_keys.get(table)
                if op == "BatchGetItem":
                    item_keys = items.get("Keys", [])
                else:
                    item_keys = [
                        (entry.get("PutRequest") or {}).get("Item")
                        or (entry.get("DeleteRequest") or {}).get("Key")
                        for entry in items
                    ]
                leading = sorted({v for k in item_keys for v in _leading_key(k, hash_key)})
                found.append(one(op, table, leading))
            return found
        if op in ("TransactWriteItems", "TransactGetItems"):
            # No IAM action of their own: AWS authorises each contained operation.
            found = []
            for entry in params.get("TransactItems", []):
                ((kind, body),) = entry.items()
                table = body["TableName"]
                key = body.get("Item") if kind == "Put" else body.get("Key")
                found.append(
                    one(self._DDB_TRANSACT[kind], table, _leading_key(key, self._hash_keys.get(table)))
                )
            return found
        table = params.get("TableName") or params.get("ResourceArn")
        return [one(op, table) if table else Request(f"dynamodb:{op}", "*")]

    def _sqs(self, op: str, params: dict[str, Any]) -> list[Request]:
        action = f"sqs:{self._SQS_BATCH.get(op, op)}"
        if "QueueUrl" in params:
            return [Request(action, _queue_arn(params["QueueUrl"]))]
        if op == "GetQueueUrl":
            return [Request(action, f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{params['QueueName']}")]
        return [Request(action, "*")]

    def _s3(self, op: str, params: dict[str, Any]) -> list[Request]:
        bucket = params.get("Bucket", "")
        if op in self._S3:
            return [Request(f"s3:{self._S3[op]}", f"arn:{PARTITION}:s3:::{bucket}/{params.get('Key', '')}")]
        if op in ("ListObjects", "ListObjectsV2", "HeadBucket"):
            context = {"s3:prefix": [params["Prefix"]]} if "Prefix" in params else {}
            return [Request("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}", context)]
        if op == "ListObjectVersions":
            return [Request("s3:ListBucketVersions", f"arn:{PARTITION}:s3:::{bucket}")]
        if op == "DeleteObjects":
            return [
                Request("s3:DeleteObject", f"arn:{PARTITION}:s3:::{bucket}/{o['Key']}")
                for o in params.get("Delete", {}).get("Objects", [])
            ]
        if op == "CopyObject":
            source = params["CopySource"]
            path = (
                f"{source['Bucket']}/{source['Key']}" if isinstance(source, dict) else str(source).lstrip("/")
            )
            return [
                Request("s3:GetObject", f"arn:{PARTITION}:s3:::{path}"),
                Request("s3:PutObject", f"arn:{PARTITION}:s3:::{bucket}/{params['Key']}"),
            ]
        return [Request(f"s3:{op}", f"arn:{PARTITION}:s3:::{bucket}")]

    def _secretsmanager(self, op: str, params: dict[str, Any]) -> list[Request]:
        secret = params.get("SecretId") or params.get("Name") or "*"
        arn = secret if secret.startswith("arn:") or secret == "*" else self._secret_arns.get(secret)
        arn = arn or f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}"
        return [Request(f"secretsmanager:{op}", arn)]

    def _sns(self, op: str, params: dict[str, Any]) -> list[Request]:
        return [Request(f"sns:{op}", params.get("TopicArn") or params.get("TargetArn") or "*")]

    def _lambda(self, op: str, params: dict[str, Any]) -> list[Request]:
        name = str(params.get("FunctionName", "*"))
        arn = (
            name if name.startswith("arn:") else f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"
        )
        action = "lambda:InvokeFunction" if op in ("Invoke", "InvokeAsync") else f"lambda:{op}"
        return [Request(action, arn)]


# AWS's error shape per service for an identity-policy refusal.
_DENIED_CODE = {
    "dynamodb": "AccessDeniedException",
    "secretsmanager": "AccessDeniedException",
    "lambda": "AccessDeniedException",
    "sns": "AuthorizationError",
}


def access_denied(role: RolePolicy, service: str, operation: str, request: Request) -> ClientError:
    message = (
        f"User: arn:{PARTITION}:sts::{ACCOUNT}:assumed-role/{role.role_name}/{role.function} is not "
        f"authorized to perform: {request.action} on resource: {request.resource} because no "
        "identity-based policy allows the action"
    )
    return ClientError(
        {
            "Error": {"Code": _DENIED_CODE.get(service, "AccessDenied"), "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        operation,
    )


class Enforcer:
    """The roles of one sandbox and the translation of calls into what AWS authorises."""

    def __init__(self, roles: dict[str, RolePolicy], translator: Translator) -> None:
        self.roles = roles
        self.translator = translator

    def check(self, role: RolePolicy, service: str, operation: str, params: dict[str, Any]) -> None:
        for request in self.translator.requests(service, operation, params):
            if not role.allows(request):
                role.record_denial(request)
                logger.warning(
                    "sandbox IAM denied a call",
                    extra={"function": role.function, "action": request.action, "resource": request.resource},
                )
                raise access_denied(role, service, operation, request)

    def missing_object(self, role: RolePolicy, params: dict[str, Any], error: ClientError) -> ClientError:
        """S3 answers a missing key with 404 only to a caller allowed s3:ListBucket on the bucket;
        anyone else gets 403 AccessDenied (it must not learn which keys exist)."""
        bucket = params.get("Bucket", "")
        listing = Request("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}")
        if role.allows(listing):
            return error
        return access_denied(role, "s3", error.operation_name, listing)

    @classmethod
    def for_stack(cls, stack: SandboxStack, functions: dict[str, FunctionSpec]) -> Enforcer:
        roles = {
            name: RolePolicy(spec, stack.physical[spec.role_logical_id].attributes["Arn"])
            for name, spec in functions.items()
        }
        return cls(roles, Translator(stack.table_hash_keys, stack.secret_arns))


@contextmanager
def revoked(role: RolePolicy, action: str, resource_fragment: str = "") -> Iterator[None]:
    """``action`` taken out of ``role`` on resources matching ``resource_fragment`` in this block:
    what a template without that grant would deploy."""
    before = role.revoke(action, resource_fragment)
    try:
        yield
    finally:
        role.restore(before)


# -- the hook ---------------------------------------------------------------------------------

_enforcers: dict[int, Enforcer] = {}  # id(RolePolicy) -> its sandbox's enforcer
_install_lock = threading.Lock()
_original_call: Callable[..., Any] | None = None
_MISSING = ("NoSuchKey", "404", "NotFound")


def register(enforcer: Enforcer) -> None:
    """Start checking calls made under ``enforcer``'s roles (patches botocore once per process)."""
    global _original_call
    with _install_lock:
        for role in enforcer.roles.values():
            _enforcers[id(role)] = enforcer
        if _original_call is None:
            _original_call = BaseClient._make_api_call
            BaseClient._make_api_call = _checked_call
            # Work a function hands to a thread pool (s3transfer's uploads and downloads) runs
            # with the function's role, as everything in one Lambda invocation does.
            original_submit = ThreadPoolExecutor.submit

            def submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
                if _acting.get() is None:
                    return original_submit(self, fn, *args, **kwargs)
                return original_submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

            ThreadPoolExecutor.submit = submit  # type: ignore[method-assign,assignment]


def unregister(enforcer: Enforcer) -> None:
    with _install_lock:
        for role in enforcer.roles.values():
            _enforcers.pop(id(role), None)


def _checked_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
    assert _original_call is not None
    role = _acting.get()
    enforcer = _enforcers.get(id(role)) if role is not None else None
    if role is None or enforcer is None:
        return _original_call(self, operation_name, api_params)
    service = self.meta.service_model.service_name
    enforcer.check(role, service, operation_name, api_params)
    try:
        return _original_call(self, operation_name, api_params)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if service == "s3" and operation_name in ("GetObject", "HeadObject") and code in _MISSING:
            raise enforcer.missing_object(role, api_params, error) from None
        raise
