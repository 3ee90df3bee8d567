"""Idempotency keys for Xero writes: the same logical write gets the same key, so a retry within
Xero's key lifetime is replayed instead of applied twice."""

from __future__ import annotations

import hashlib


def idempotency_key(*parts: str) -> str:
    """A key from the parts that make a write what it is (64 hex characters; Xero allows 128)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()
