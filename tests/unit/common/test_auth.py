"""Token checking without a running suite: key rotation without a restart, and
the key files' permissions."""

import stat
from pathlib import Path

import pytest

from services.common import auth, tokens
from services.common.auth import Authenticator, Caller, Role, Unauthenticated


async def test_a_rotated_key_is_picked_up_on_its_first_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MIN_REFRESH_SECONDS", 0.0)
    jwks = tokens.init(tmp_path)
    verifier = Authenticator(str(jwks), "issuer-x")
    before = tokens.mint(tmp_path, "seller", "s1", issuer="issuer-x")
    assert await verifier.verify(before) == Caller("s1", Role.SELLER)

    tokens.rotate(tmp_path)
    after = tokens.mint(tmp_path, "creator", "c1", issuer="issuer-x")
    assert await verifier.verify(after) == Caller("c1", Role.CREATOR)
    assert await verifier.verify(before) == Caller("s1", Role.SELLER)  # the previous key stays until the next rotation

    tokens.rotate(tmp_path)
    monkeypatch.setattr(auth, "MAX_KEY_AGE_SECONDS", 0.0)
    with pytest.raises(Unauthenticated):
        await verifier.verify(before)


async def test_without_a_jwks_everything_is_refused(tmp_path: Path) -> None:
    tokens.init(tmp_path)
    with pytest.raises(Unauthenticated):
        await Authenticator("", "seller-creator-im-local").verify(tokens.mint(tmp_path, "ops", "o"))


def test_the_private_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    tokens.init(tmp_path / "auth")
    assert stat.S_IMODE((tmp_path / "auth" / tokens.PRIVATE_KEY).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "auth").stat().st_mode) == 0o700
    before = (tmp_path / "auth" / tokens.PRIVATE_KEY).read_bytes()
    tokens.init(tmp_path / "auth")  # idempotent
    assert (tmp_path / "auth" / tokens.PRIVATE_KEY).read_bytes() == before


async def test_a_verified_token_is_taken_again_for_a_while_without_its_signature_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens.init(tmp_path)
    verifier = Authenticator(str(tmp_path / tokens.JWKS), "issuer-x")
    token = tokens.mint(tmp_path, "seller", "s1", issuer="issuer-x")
    assert await verifier.verify(token) == Caller("s1", Role.SELLER)
    decode = auth.jwt.decode
    checked = []
    monkeypatch.setattr(auth.jwt, "decode", lambda *a, **k: checked.append(1) or decode(*a, **k))
    assert await verifier.verify(token) == Caller("s1", Role.SELLER) and not checked

    monkeypatch.setattr(auth, "VERIFIED_SECONDS", 0.0)
    other = tokens.mint(tmp_path, "ops", "o1", issuer="issuer-x")
    assert await verifier.verify(other) == await verifier.verify(other) == Caller("o1", Role.OPS)
    assert len(checked) == 2  # kept for no time: checked each time
