"""What every fault injector of the sandbox shares (Ignition's webhooks and the AWS side in
``sandbox/faults.py``, the Xero emulator's calls in ``sandbox/xero_emulator/faults.py``).

A profile is a frozen dataclass parsed from its JSON form: only its own field names are accepted,
``seed`` is an integer, a rate is a number from 0 to 1. The injector holding it draws every
decision from ``random.Random(seed)`` under one lock and counts what it injected, so a profile
replays the same sequence of decisions.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any, Generic, Self, TypeVar


def check_keys(body: dict[str, Any], known: Iterable[str]) -> None:
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise ValueError(f"unknown fault keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")


def seed_of(body: dict[str, Any]) -> int:
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError("seed must be an integer")
    return seed


def rate(body: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = body.get(key, default)
    # Decimal: the Ignition emulator reads JSON numbers exactly.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not 0 <= value <= 1:
        raise ValueError(f"{key} must be a number from 0 to 1")
    return float(value)


@dataclass(frozen=True)
class Profile:
    """A seed and rates; a profile with other kinds of fields overrides ``parse``."""

    seed: int = 0

    @classmethod
    def keys(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Self:
        """A profile from its JSON form; ``ValueError`` names the first problem."""
        check_keys(body, cls.keys())
        values: dict[str, Any] = {
            f.name: seed_of(body) if f.name == "seed" else cls._rate(body, f.name) for f in fields(cls)
        }
        return cls(**values)

    @classmethod
    def _rate(cls, body: dict[str, Any], key: str) -> float:
        return rate(body, key)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


P = TypeVar("P", bound=Profile)


class SeededFaults(Generic[P]):
    """The active profile, its random source and what it injected. Thread-safe."""

    def __init__(self, profile: P) -> None:
        self.profile = profile
        self.injected: Counter[str] = Counter()
        self._random = random.Random(profile.seed)
        self._lock = threading.Lock()

    def _install(self, profile: P) -> None:
        """Hold the lock: a new profile starts its draws afresh from its seed."""
        self.profile = profile
        self._random = random.Random(profile.seed)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"profile": self.profile.as_json(), "injected": dict(self.injected)}

    def reset_counters(self) -> None:
        with self._lock:
            self.injected.clear()

    def count(self, what: str) -> None:
        with self._lock:
            self.injected[what] += 1
