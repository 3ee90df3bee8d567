"""Fault profiles for the Xero emulator: ``POST /_emulator/faults`` with a JSON profile.

What each key does to Accounting API calls (admin and identity endpoints are never hit, except the
token endpoint by ``drop_token_responses``):

* ``error_rate`` / ``error_statuses``: the call is answered with one of the statuses before Xero
  does anything (500 JSON, 503 plain-text maintenance page, others a problem body).
* ``timeout_rate`` / ``timeout_ms``: the call hangs for ``timeout_ms`` (set it past the client's
  timeout). Half of them hang *before* Xero applies the call, half *after* (the write happened but
  the answer never arrives: the retry must not write twice).
* ``latency_ms``: ``[low, high]`` extra milliseconds on every call (outside the emulator's lock).
* ``rate_limit_bursts`` / ``burst_rate`` / ``burst_seconds``: with ``burst_rate`` per call a burst
  starts; for ``burst_seconds`` every call gets ``429`` minute with ``Retry-After``, as Xero answers
  a call over the organisation's 60 calls/minute (integration-facts.md, "Limits": ``429``,
  ``X-Rate-Limit-Problem: minute``, ``Retry-After`` seconds) when other apps share the minute.
* ``expire_tokens`` / ``expire_rate``: with ``expire_rate`` per call, every valid access token is
  invalidated early (a token at least ``min_token_age_seconds`` old), so the call gets
  ``401 TokenExpired`` and the fleet must refresh exactly once.
* ``drop_token_responses``: that share of refresh grants is performed server-side but the answer
  is lost (the connection closes mid-body); the client must retry with the previous refresh token
  inside Xero's grace period.
* ``first_within_calls``: each of the faults above that the profile turns on (5xx, timeout, burst,
  token expiry) comes at least once within that many Accounting API calls after the profile is
  set, at a call the seed picks (a call taken by another fault, or an expiry on a token too young,
  passes it on to the next); the rates draw the rest. A rate alone may draw nothing on a small
  workload (0.02 per call over 30 calls misses 55% of the time), so a profile that must bite sets it.
* ``seed``: draws come from ``random.Random(seed)``, so a profile replays the same sequence of
  decisions (which call gets which fault still depends on thread interleaving).

Unknown keys are refused (``ValueError``, answered 400); ``{}`` clears every fault.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from flask import Response

from sandbox.seeded_faults import Profile, SeededFaults, check_keys, rate, seed_of

from . import responses

_STATUS_RANGE = range(500, 600)


def _positive(body: dict[str, Any], key: str, default: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a non-negative number")
    return float(value)


def _count(body: dict[str, Any], key: str) -> int:
    value = body.get(key, 0)
    if type(value) is not int or value < 0:
        raise ValueError(f"{key} must be a non-negative integer")
    return value


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


@dataclass(frozen=True)
class XeroFaultProfile(Profile):
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 503)
    timeout_rate: float = 0.0
    timeout_ms: float = 1_000.0
    latency_ms: tuple[float, float] = (0.0, 0.0)
    rate_limit_bursts: bool = False
    burst_rate: float = 0.01
    burst_seconds: float = 1.0
    expire_tokens: bool = False
    expire_rate: float = 0.01
    min_token_age_seconds: float = 1.0
    drop_token_responses: float = 0.0
    first_within_calls: int = 0

    @property
    def active(self) -> bool:
        return self != XeroFaultProfile(seed=self.seed)

    @classmethod
    def parse(cls, body: dict[str, Any]) -> XeroFaultProfile:
        """A profile from its JSON form; ``ValueError`` names the first problem."""
        check_keys(body, cls.keys())
        seed = seed_of(body)
        statuses = body.get("error_statuses", [500, 503])
        if (
            not isinstance(statuses, list)
            or not statuses
            or not all(type(s) is int and s in _STATUS_RANGE for s in statuses)
        ):
            raise ValueError("error_statuses must be a non-empty list of 5xx statuses")
        latency = body.get("latency_ms", [0, 0])
        if isinstance(latency, int | float) and not isinstance(latency, bool):
            latency = [latency, latency]
        if (
            not isinstance(latency, list)
            or len(latency) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in latency)
            or latency[0] > latency[1]
        ):
            raise ValueError("latency_ms must be [low, high] milliseconds with 0 <= low <= high")
        return cls(
            seed=seed,
            error_rate=rate(body, "error_rate"),
            error_statuses=tuple(statuses),
            timeout_rate=rate(body, "timeout_rate"),
            timeout_ms=_positive(body, "timeout_ms", 1_000.0),
            latency_ms=(float(latency[0]), float(latency[1])),
            rate_limit_bursts=_flag(body, "rate_limit_bursts"),
            burst_rate=rate(body, "burst_rate", 0.01),
            burst_seconds=_positive(body, "burst_seconds", 1.0),
            expire_tokens=_flag(body, "expire_tokens"),
            expire_rate=rate(body, "expire_rate", 0.01),
            min_token_age_seconds=_positive(body, "min_token_age_seconds", 1.0),
            drop_token_responses=rate(body, "drop_token_responses"),
            first_within_calls=_count(body, "first_within_calls"),
        )

    def turned_on(self) -> tuple[str, ...]:
        """The call faults this profile injects, by the names :class:`XeroFaults` schedules."""
        on = {
            "error": self.error_rate > 0,
            "timeout": self.timeout_rate > 0,
            "burst": self.rate_limit_bursts,
            "expiry": self.expire_tokens,
        }
        return tuple(kind for kind, wanted in on.items() if wanted)

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["error_statuses"] = list(self.error_statuses)
        body["latency_ms"] = list(self.latency_ms)
        return body


@dataclass
class FaultPlan:
    """What the profile decided for one API call."""

    response: Response | None = None  # answer this instead of Xero (5xx, 429 burst)
    latency_seconds: float = 0.0
    hang_seconds: float = 0.0  # a timeout: hang this long...
    hang_after_apply: bool = False  # ...after applying the call (True) or instead of it (False)
    expire_tokens: bool = False


class XeroFaults(SeededFaults[XeroFaultProfile]):
    def __init__(self) -> None:
        super().__init__(XeroFaultProfile())
        self._burst_until = 0.0
        self._calls = 0
        self._due_at: dict[str, int] = {}  # fault -> the call from which it is owed (first_within_calls)

    def configure(self, profile: XeroFaultProfile) -> None:
        with self._lock:
            self._install(profile)
            self._burst_until = 0.0
            self._calls = 0
            within = profile.first_within_calls
            self._due_at = (
                {kind: self._random.randint(1, within) for kind in profile.turned_on()} if within else {}
            )

    def _due(self, kind: str) -> bool:
        """Hold the lock: ``kind`` is owed at this call (the first-within-calls guarantee)."""
        return kind in self._due_at and self._due_at[kind] <= self._calls

    def count(self, what: str) -> None:
        super().count(what)
        if what == "tokens_expired":
            with self._lock:
                self._due_at.pop("expiry", None)  # paid only when a token really expired

    def plan(self, now: float) -> FaultPlan:
        """Decide the faults for one Accounting API call made at ``now`` (emulator clock)."""
        plan = FaultPlan()
        with self._lock:
            p = self.profile
            if not p.active:
                return plan
            draw = self._random
            self._calls += 1
            low, high = p.latency_ms
            if high > 0:
                plan.latency_seconds = draw.uniform(low, high) / 1000
            if p.rate_limit_bursts:
                if now >= self._burst_until and (self._due("burst") or draw.random() < p.burst_rate):
                    self._due_at.pop("burst", None)
                    self._burst_until = now + p.burst_seconds
                    self.injected["rate_limit_bursts"] += 1
                if now < self._burst_until:
                    self.injected["429"] += 1
                    retry_after = max(1, math.ceil(self._burst_until - now))
                    plan.response = responses.problem(
                        429,
                        "Too Many Requests",
                        "Rate limit exceeded: minute",
                        {"Retry-After": str(retry_after), "X-Rate-Limit-Problem": "minute"},
                    )
                    return plan
            if self._due("error") or (p.error_rate and draw.random() < p.error_rate):
                self._due_at.pop("error", None)
                status = draw.choice(p.error_statuses)
                self.injected[str(status)] += 1
                plan.response = _error_response(status)
                return plan
            if self._due("timeout") or (p.timeout_rate and draw.random() < p.timeout_rate):
                self._due_at.pop("timeout", None)
                plan.hang_seconds = p.timeout_ms / 1000
                plan.hang_after_apply = draw.random() < 0.5
                self.injected["timeouts_after_apply" if plan.hang_after_apply else "timeouts"] += 1
            if self._due("expiry") or (p.expire_tokens and draw.random() < p.expire_rate):
                # Owed until the emulator counts a real expiry (a token younger than
                # min_token_age_seconds is spared): see count().
                plan.expire_tokens = True
        return plan

    def drop_token_response(self) -> bool:
        with self._lock:
            rate = self.profile.drop_token_responses
            dropped = rate > 0 and self._random.random() < rate
            if dropped:
                self.injected["token_responses_dropped"] += 1
            return dropped

    @property
    def min_token_age(self) -> float:
        return self.profile.min_token_age_seconds


def _error_response(status: int) -> Response:
    if status == 503:
        # Maintenance answers plain text, not JSON: clients must check the status first.
        return responses.text_response(responses.MAINTENANCE_TEXT, 503)
    if status == 500:
        return responses.json_response(
            {"ErrorNumber": 500, "Type": "UnknownErrorException", "Message": responses.SERVER_ERROR_MESSAGE},
            500,
        )
    return responses.problem(status, "Error", f"Injected fault {status}")


def lost_response(body: bytes) -> Response:
    """An answer that never fully arrives: headers promise more than is sent, then the connection
    closes, so the client sees a protocol error (the server-side effect has happened)."""
    response = Response(body[: max(1, len(body) // 3)], status=200, mimetype="application/json")
    response.headers["Content-Length"] = str(len(body) + 64)
    response.headers["Connection"] = "close"
    return response
