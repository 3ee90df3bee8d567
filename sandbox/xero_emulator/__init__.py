"""Stateful Xero emulator (identity + Accounting API) for the local sandbox and the tests."""

from __future__ import annotations

from .app import API_PREFIX, DEFAULT_TENANT_ID, XeroEmulator
from .where import WhereParseError, compile_where

__all__ = ["API_PREFIX", "DEFAULT_TENANT_ID", "WhereParseError", "XeroEmulator", "compile_where"]
