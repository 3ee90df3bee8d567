"""What can go wrong talking to Xero, sorted by what the caller should do about it.

Every error raised is also one of the sync's two kinds (``shared/errors.py``):

* :class:`shared.errors.TransientSyncError`: nothing is wrong with the request or the connection;
  let the message go back to the queue (SQS visibility timeout / retry) and it will succeed later.
  Never alert on one of these alone; alert on the DLQ.
* :class:`shared.errors.PermanentError`: retrying will not help; a person must fix data
  (validation), configuration (wrong tenant, scopes) or re-authorise the connection. Quarantine the
  event and alert.

Authorisation lost (``invalid_grant`` on refresh) is :class:`shared.oauth.AuthorisationLost`, shared
with the Ignition client; it is permanent too.

Messages never contain tokens, Authorization headers or request bodies; Xero's own validation
messages are kept because they are what a person needs to fix the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.errors import LimitWait, PermanentError, TransientSyncError


class XeroError(Exception):
    """Base for every error raised by :class:`shared.xero.client.XeroClient`; each one raised is
    also transient or permanent (see the module docstring)."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class XeroValidationError(XeroError, PermanentError):
    """400 ValidationException: the request was understood and refused. Permanent.

    ``messages`` flattens every ``ValidationErrors[].Message`` (and the top-level ``Message`` when
    there are no elements); ``elements`` keeps Xero's per-element detail in request order.
    """

    def __init__(
        self,
        message: str,
        *,
        messages: Sequence[str] = (),
        elements: Sequence[dict[str, Any]] = (),
        status: int | None = 400,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, status=status, endpoint=endpoint)
        self.messages = list(messages)
        self.elements = list(elements)


class XeroRequestError(XeroError, PermanentError):
    """Any other 4xx Xero refused (bad query, method not allowed, payload too large). Permanent:
    the same request will be refused again."""


class XeroRateLimited(XeroError, LimitWait):
    """Over a Xero limit (429) or over our own call budget; retry after ``retry_after`` seconds.

    ``problem`` is Xero's ``X-Rate-Limit-Problem`` (``minute``, ``day``, ...) or, for our own
    budget, ``budget-minute`` / ``budget-day`` / ``budget-concurrency``.
    """

    def __init__(
        self,
        retry_after: float,
        problem: str | None = None,
        *,
        status: int | None = 429,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(
            f"Xero rate limit ({problem or 'unknown'}): retry after {retry_after:.0f}s",
            status=status,
            endpoint=endpoint,
        )
        self.retry_after = retry_after
        self.problem = problem


class XeroUnavailable(XeroError, TransientSyncError):
    """5xx, timeouts or connection errors that persisted through every in-process retry."""


class XeroNotFound(XeroError, PermanentError):
    """404 where the caller asked for something that must exist. Permanent."""


class XeroTokenRejected(XeroError, TransientSyncError):
    """401 again right after a forced refresh succeeded. A connection that was really withdrawn
    fails the refresh itself (``invalid_grant``: authorisation lost), so this is a token that
    expired or was replaced between refresh and use (another worker, an early expiry): transient,
    a counted fault, parked with this reason if it keeps happening."""


class XeroAuthError(XeroError, PermanentError):
    """403 (wrong tenant, missing scope, app disconnected from this organisation), or a 401 that
    is not a token expiry. Permanent: check the connection and the tenant id."""


class XeroUnexpectedResponse(XeroError, PermanentError):
    """A 2xx whose body does not have the documented shape (no element where one was written, a
    field that does not fit the model). Permanent: the same request gets the same answer."""
