from __future__ import annotations

from shared.errors import PermanentSyncError, TransientSyncError, is_permanent, retry_delay_seconds
from shared.ignition.reporting import IgnitionAuthError, IgnitionRateLimited, IgnitionUnavailable
from shared.oauth import AuthorisationLost, TokenRefreshFailed
from shared.xero.errors import XeroRateLimited, XeroUnavailable, XeroValidationError


def upper_bound(low: int, high: int) -> int:
    return high


def test_given_rate_limit_with_retry_after_when_delayed_then_message_waits_just_past_it() -> None:
    assert retry_delay_seconds(XeroRateLimited(33.2, "minute"), receive_count=1) == 35
    assert retry_delay_seconds(IgnitionRateLimited(1200), receive_count=4) == 1201


def test_given_day_limit_beyond_sqs_maximum_when_delayed_then_capped_at_twelve_hours() -> None:
    assert retry_delay_seconds(XeroRateLimited(20 * 3600, "day"), receive_count=1) == 12 * 3600


def test_given_repeated_transient_faults_when_delayed_then_backoff_grows_and_is_capped() -> None:
    delays = [retry_delay_seconds(XeroUnavailable("503"), n, rand=upper_bound) for n in range(1, 9)]
    assert delays == [10, 20, 40, 80, 160, 320, 640, 900]


def test_given_jitter_when_delayed_then_delay_stays_within_half_to_full_ceiling() -> None:
    for _ in range(200):
        assert 10 <= retry_delay_seconds(TransientSyncError("x"), 2) <= 20


def test_given_known_errors_when_classified_then_people_are_needed_only_for_permanent_ones() -> None:
    assert is_permanent(PermanentSyncError("rule", category="xero_validation")) is True
    assert is_permanent(XeroValidationError("TaxType cannot be used with account code")) is True
    assert is_permanent(AuthorisationLost("xero", "invalid_grant", hint="reconnect")) is True
    assert is_permanent(IgnitionAuthError("401", status=401)) is True
    assert is_permanent(XeroUnavailable("503")) is False
    assert is_permanent(TokenRefreshFailed("timeout", provider="xero")) is False
    assert is_permanent(IgnitionUnavailable("timeout")) is False
    assert is_permanent(KeyError("bug")) is None
