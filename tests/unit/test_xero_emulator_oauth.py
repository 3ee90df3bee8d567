"""The Xero emulator's refresh-token rotation: the grace period replays a lost answer and nothing
more (sandbox/xero_emulator/oauth.py)."""

from __future__ import annotations

import pytest

from sandbox.xero_emulator.oauth import REFRESH_GRACE_SECONDS, OAuthError, TokenService

SCOPES = frozenset({"offline_access", "accounting.contacts"})


def _service_with_token() -> tuple[TokenService, str]:
    service = TokenService("client", "secret")
    issued = service.issue(0.0, SCOPES, "auth-1", public_client=False)
    return service, str(issued["refresh_token"])


def test_given_rotation_already_used_when_old_refresh_token_replayed_within_grace_then_invalid_grant() -> (
    None
):
    service, first = _service_with_token()
    second = str(service.refresh_grant(10.0, first, client_secret=True)["refresh_token"])
    service.refresh_grant(20.0, second, client_secret=True)  # the chain moved on

    with pytest.raises(OAuthError) as caught:
        service.refresh_grant(30.0, first, client_secret=True)  # no second chain from a spent token

    assert caught.value.error == "invalid_grant"
    assert service.counters.invalid_grants == 1


def test_given_grace_replays_when_repeated_then_the_grace_runs_from_the_first_use() -> None:
    service, first = _service_with_token()
    second = service.refresh_grant(0.0, first, client_secret=True)["refresh_token"]

    replay = service.refresh_grant(REFRESH_GRACE_SECONDS - 1, first, client_secret=True)
    assert replay["refresh_token"] == second  # the same rotation, handed back again
    with pytest.raises(OAuthError):
        service.refresh_grant(REFRESH_GRACE_SECONDS + 1, first, client_secret=True)
