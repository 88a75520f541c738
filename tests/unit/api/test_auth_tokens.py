"""TokenCodec: what a token must carry to be accepted, and which type it is."""

# ruff: noqa: S106 - test passwords and token ids are fixtures, not secrets

from __future__ import annotations

import time

import jwt
import pytest

from mediaflow_api.auth.tokens import TokenCodec, TokenError, TokenType
from tests.unit.api.conftest import make_settings

KEY = "k" * 64  # long enough for the HS512 forgery below


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec.from_settings(make_settings(jwt_signing_key=KEY))


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "iss": "mediaflow",
        "aud": "mediaflow-api",
        "sub": "abc",
        "iat": now,
        "exp": now + 60,
        "typ": "access",
        "jti": "id-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def forge(payload: dict[str, object], key: str = KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def test_round_trip(codec: TokenCodec) -> None:
    access = codec.decode(codec.encode("abc", TokenType.ACCESS), TokenType.ACCESS)
    assert (access.subject, access.type, access.family) == ("abc", TokenType.ACCESS, None)
    refresh = codec.decode(
        codec.encode("abc", TokenType.REFRESH, token_id="t1", family="f1"), TokenType.REFRESH
    )
    assert (refresh.token_id, refresh.family) == ("t1", "f1")
    assert refresh.expires_at - int(time.time()) == pytest.approx(7 * 24 * 3600, abs=5)


def test_a_forged_well_formed_token_is_accepted(codec: TokenCodec) -> None:
    """The baseline of the refusals below: only the named claim differs."""
    assert codec.decode(forge(claims()), TokenType.ACCESS).subject == "abc"


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss", "aud", "typ", "jti"])
def test_a_missing_claim_is_refused(codec: TokenCodec, missing: str) -> None:
    with pytest.raises(TokenError, match=missing):
        codec.decode(forge(claims(**{missing: None})), TokenType.ACCESS)


@pytest.mark.parametrize(
    "wrong", [{"aud": "someone-else"}, {"iss": "someone-else"}, {"aud": ["other"]}]
)
def test_wrong_issuer_or_audience_is_refused(codec: TokenCodec, wrong: dict[str, object]) -> None:
    with pytest.raises(TokenError):
        codec.decode(forge(claims(**wrong)), TokenType.ACCESS)


def test_an_expired_token_is_refused_as_expired(codec: TokenCodec) -> None:
    past = int(time.time()) - 3600
    with pytest.raises(TokenError) as error:
        codec.decode(forge(claims(iat=past, exp=past + 60)), TokenType.ACCESS)
    assert error.value.expired


def test_a_refresh_token_is_never_an_access_token(codec: TokenCodec) -> None:
    refresh = codec.encode("abc", TokenType.REFRESH, family="f1")
    with pytest.raises(TokenError, match="refresh token was given"):
        codec.decode(refresh, TokenType.ACCESS)
    with pytest.raises(TokenError):  # refused already for lacking a family
        codec.decode(codec.encode("abc", TokenType.ACCESS), TokenType.REFRESH)


def test_a_refresh_token_without_family_is_refused(codec: TokenCodec) -> None:
    with pytest.raises(TokenError, match="fam"):
        codec.decode(forge(claims(typ="refresh")), TokenType.REFRESH)


def test_alg_none_is_refused(codec: TokenCodec) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    with pytest.raises(TokenError):
        codec.decode(unsigned, TokenType.ACCESS)


def test_other_algorithms_and_keys_are_refused(codec: TokenCodec) -> None:
    with pytest.raises(TokenError):
        codec.decode(forge(claims(), algorithm="HS512"), TokenType.ACCESS)
    with pytest.raises(TokenError):
        codec.decode(forge(claims(), key="x" * 64), TokenType.ACCESS)


def test_the_header_pins_hs256(codec: TokenCodec) -> None:
    assert jwt.get_unverified_header(codec.encode("abc", TokenType.ACCESS))["alg"] == "HS256"
