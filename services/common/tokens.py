"""A local instance's signing key, its JWKS, and tokens signed with it (DESIGN §7).

    python -m services.common.tokens init DIR       create the key and JWKS once (idempotent)
    python -m services.common.tokens mint DIR --role seller --sub s1 [--ttl 3600]
    python -m services.common.tokens rotate DIR     new signing key; the JWKS keeps the previous one

DIR is ``.data/<instance>/auth``: ``signing-key.pem`` (the private key, owner
only) and ``jwks.json`` (the public keys services verify against). After a
rotation, tokens signed with the previous key stay valid until they expire;
the rotation after that drops it.
"""

import argparse
import base64
import hashlib
import json
import os
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from services.common.auth import ALGORITHM, AUDIENCE, Role
from services.common.settings import ServiceSettings

PRIVATE_KEY = "signing-key.pem"
JWKS = "jwks.json"
KEYS_KEPT = 2  # the signing key and the one before it


def public_jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    jwk = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    # RFC 7638 thumbprint: the key id names the key, so it changes exactly on rotation.
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"), sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")
    return {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    os.replace(tmp, path)


def _write_jwks(directory: Path, keys: list[dict[str, str]]) -> None:
    tmp = directory / f"{JWKS}.tmp"
    tmp.write_text(json.dumps({"keys": keys}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, directory / JWKS)


def signing_key(directory: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key((directory / PRIVATE_KEY).read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey), "the signing key must be Ed25519"
    return key


def init(directory: Path) -> Path:
    """Create the signing key and the JWKS unless they exist; return the JWKS path."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    if not (directory / PRIVATE_KEY).exists():
        key = Ed25519PrivateKey.generate()
        _write_private(directory / PRIVATE_KEY, key)
        _write_jwks(directory, [public_jwk(key)])
    return directory / JWKS


def rotate(directory: Path) -> str:
    """A new signing key; the JWKS lists it first and keeps the previous one. Returns the new key id."""
    init(directory)
    kept = json.loads((directory / JWKS).read_text(encoding="utf-8"))["keys"][: KEYS_KEPT - 1]
    key = Ed25519PrivateKey.generate()
    new = public_jwk(key)
    _write_jwks(directory, [new, *kept])  # published before it signs anything
    _write_private(directory / PRIVATE_KEY, key)
    return new["kid"]


def mint(directory: Path, role: Role | str, sub: str, ttl: int = 3600, issuer: str | None = None, audience: str = AUDIENCE) -> str:
    key = signing_key(directory)
    now = int(time.time())
    claims = {
        "sub": sub,
        "role": str(Role(role)),
        "aud": audience,
        "iss": issuer if issuer is not None else ServiceSettings().auth_issuer,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": public_jwk(key)["kid"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("init", "rotate", "mint"):
        commands.add_parser(name).add_argument("directory", type=Path)
    minting = commands.choices["mint"]
    minting.add_argument("--role", required=True, choices=[str(r) for r in Role])
    minting.add_argument("--sub", required=True)
    minting.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    args = parser.parse_args()
    if args.command == "init":
        print(init(args.directory))
    elif args.command == "rotate":
        print(f"new signing key {rotate(args.directory)}; the previous one stays in the JWKS until the next rotation")
    else:
        init(args.directory)
        print(mint(args.directory, args.role, args.sub, args.ttl))


if __name__ == "__main__":
    main()
