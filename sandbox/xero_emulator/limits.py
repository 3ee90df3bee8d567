"""Xero's per-organisation rate limits: fixed windows, counted by the shared Clock.

developer.xero.com/documentation/oauth2/limits: 5 concurrent, 60/minute, 5,000/day per tenant,
10,000/minute per app; windows are fixed, not sliding. Callers hold the emulator's lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SECONDS_PER_DAY = 86_400


@dataclass
class Limits:
    per_minute: int = 60
    per_day: int = 5_000
    concurrent: int = 5
    app_per_minute: int = 10_000
    latency_ms: int = 0


@dataclass
class RateLimitExceeded:
    problem: str  # minute | day | concurrent
    retry_after: int


@dataclass
class _Window:
    key: int = -1
    count: int = 0

    def current(self, key: int) -> int:
        if key != self.key:
            self.key, self.count = key, 0
        return self.count


@dataclass
class RateLimiter:
    limits: Limits = field(default_factory=Limits)
    minute: _Window = field(default_factory=_Window)
    day: _Window = field(default_factory=_Window)
    app_minute: _Window = field(default_factory=_Window)
    in_flight: int = 0

    def admit(self, now: float) -> RateLimitExceeded | None:
        """Count one call, or say which limit it breaks (a refused call is not counted)."""
        minute_key, day_key = int(now // 60), int(now // SECONDS_PER_DAY)
        if self.in_flight >= self.limits.concurrent:
            return RateLimitExceeded("concurrent", 1)
        if self.day.current(day_key) >= self.limits.per_day:
            return RateLimitExceeded("day", math.ceil((day_key + 1) * SECONDS_PER_DAY - now))
        if self.minute.current(minute_key) >= self.limits.per_minute:
            return RateLimitExceeded("minute", max(1, math.ceil((minute_key + 1) * 60 - now)))
        self.app_minute.current(minute_key)
        self.minute.count += 1
        self.day.count += 1
        self.app_minute.count += 1
        self.in_flight += 1
        return None

    def release(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def headers(self, now: float) -> dict[str, str]:
        minute_key, day_key = int(now // 60), int(now // SECONDS_PER_DAY)
        return {
            "X-DayLimit-Remaining": str(max(0, self.limits.per_day - self.day.current(day_key))),
            "X-MinLimit-Remaining": str(max(0, self.limits.per_minute - self.minute.current(minute_key))),
            "X-AppMinLimit-Remaining": str(
                max(0, self.limits.app_per_minute - self.app_minute.current(minute_key))
            ),
        }

    def reset_counters(self) -> None:
        self.minute, self.day, self.app_minute = _Window(), _Window(), _Window()


# Request size: IDs= with more than about 50 GUIDs, or a URL over about 2,000 characters, is
# answered 404 "resource cannot be found" (XeroAPI/Xero-OpenAPI#534, xero-node#404,
# Xero-NetStandard#471). The emulator takes the stricter reading of "about": more than 50, over 2,000.
MAX_IDS_PER_REQUEST = 50
MAX_URL_LENGTH = 2_000
# The URL is measured as sent to the real host, or as received, whichever is longer: the sandbox's
# http://127.0.0.1:port must not make a URL pass that https://api.xero.com would refuse.
XERO_API_ORIGIN = "https://api.xero.com"


def request_too_large(origin: str, raw_path: str, query_string: str, ids: str | None) -> bool:
    """True when Xero would answer 404 for the size of the request alone."""
    query = f"?{query_string}" if query_string else ""
    length = max(len(origin), len(XERO_API_ORIGIN)) + len(raw_path) + len(query)
    if length > MAX_URL_LENGTH:
        return True
    count = len([part for part in (ids or "").split(",") if part.strip()])
    return count > MAX_IDS_PER_REQUEST
