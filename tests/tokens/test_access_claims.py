"""keyplane.tokens.access: the act chain both ways, claim checks and JWS parsing refusals
(pure functions; the service tests cover them end to end)."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane.tokens.access import (
    MAX_ACTORS,
    build_claims,
    check_claims,
    check_time,
    flatten_act,
    nest_act,
    parse_jws,
)
from keyplane.tokens.errors import OAuthError, TokenInvalid


@pytest.mark.parametrize("actors", [(), ("agent:a",), ("agent:a", "agent:b", "agent:c")])
def test_act_round_trip(actors: tuple[str, ...]) -> None:
    act = nest_act(actors)
    assert flatten_act(act) == actors
    if len(actors) == 3:  # RFC 8693 §4.1: the newest actor outermost
        assert act == {"sub": "agent:c", "act": {"sub": "agent:b", "act": {"sub": "agent:a"}}}


@pytest.mark.parametrize(
    "act",
    ["agent:a", {"act": {"sub": "x"}}, {"sub": 5}, {"sub": ""}, {"sub": "a", "act": []},
     nest_act([f"agent:{i}" for i in range(MAX_ACTORS + 1)])],
)  # fmt: skip
def test_malformed_act(act: Any) -> None:
    with pytest.raises(TokenInvalid) as info:
        flatten_act(act)
    assert info.value.reason == "malformed_act"


def _claims(**kw: Any) -> dict[str, Any]:
    c = build_claims(issuer="https://kp", subject="agent:a", audience=["https://kp"],
                     issued_at=100, expires_at=400, jti="j1", client_id="agent:a",
                     creds=["c1", "c1", "c2"], parents=["p"], delegations=["d"])  # fmt: skip
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def test_build_and_check() -> None:
    c = _claims()
    assert c["kp_creds"] == ["c1", "c2"] and c["nbf"] == 100 and c["kp_delegations"] == ["d"]
    assert "act" not in c and "scope" not in c
    tc = check_claims(c)
    assert (tc.subject, tc.jti, tc.expires_at, tc.audience) == (
        "agent:a",
        "j1",
        400,
        ("https://kp",),
    )
    check_time(tc, 399.9)
    with pytest.raises(TokenInvalid, match="expired"):
        check_time(tc, 400)
    with pytest.raises(TokenInvalid, match="not_yet_valid"):
        check_time(check_claims(_claims(nbf=200)), 169)
    check_time(check_claims(_claims(nbf=200)), 170)  # 30 s of skew


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"sub": None}, "invalid_sub"), ({"exp": "400"}, "invalid_exp"), ({"exp": True}, "invalid_exp"),
     ({"aud": []}, "invalid_aud"), ({"aud": [1]}, "invalid_aud"), ({"jti": ""}, "invalid_jti"),
     ({"kp_creds": "c1"}, "invalid_kp_creds"), ({"client_id": None}, "invalid_client_id"),
     ({"scope": 7}, "invalid_scope")],
)  # fmt: skip
def test_bad_claims(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(TokenInvalid) as info:
        check_claims(_claims(**change))
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "token", ["", "a.b", "a.b.c.d", "!!.e30.e30", "e30.W10.e30", 5, "x" * 9000]
)
def test_parse_refuses_malformed(token: Any) -> None:
    with pytest.raises(TokenInvalid) as info:
        parse_jws(token)
    assert info.value.reason == "malformed"


def test_oauth_error_shape() -> None:
    e = OAuthError("invalid_client", reason="bad_secret")
    assert e.status == 401 and e.response() == {
        "error": "invalid_client", "error_description": "invalid client"}  # fmt: skip
    assert (
        OAuthError("server_error").status == 500
        and OAuthError("invalid_grant").reason == "invalid_grant"
    )
    with pytest.raises(ValueError):
        OAuthError("made_up")
