"""Who may read what over HTTP (DESIGN §7): Ed25519 JWTs checked against a
JWKS, and the scope dependencies every ``/v1`` route declares.

A route states the principal it serves by depending on a *scope*: ``SellerScope`` for ``/v1/sellers/{seller_id}/…``,
``ConversationScope`` for a conversation's messages, or one of its own for a
resource whose parties are known only once it is loaded (cards). Every scope
depends on :func:`authenticated`, so the order is always 401, then 403
``FORBIDDEN``, then the route's own R13 check (403 ``SELLER_ACCESS_REVOKED``).
"""

import asyncio
import json
import time
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.logging import get_logger
from services.common.settings import ServiceSettings

AUDIENCE = "seller-creator-im"
ALGORITHM = "EdDSA"  # the only one accepted: no "none", no HMAC keyed with a public key
CLOCK_SKEW_SECONDS = 60
# A JWKS is fetched again when a token names an unknown key (a rotation), but
# not more often than this, so tokens with made-up key ids cannot hammer it;
# and at least this often, so a retired key stops being accepted.
MIN_REFRESH_SECONDS = 5.0
MAX_KEY_AGE_SECONDS = 300.0
# A verified token is taken again without its signature checked (0.5 ms here)
# for this long at most, never past its expiry; the most recent ones are kept.
VERIFIED_SECONDS = 30.0
VERIFIED_TOKENS = 10_000

class Role(StrEnum):
    SELLER = "seller"
    CREATOR = "creator"
    OPS = "ops"


@dataclass(frozen=True, slots=True)
class Caller:
    sub: str
    role: Role


class Unauthenticated(Exception):
    """401: no token, or one that is not valid here."""


class Forbidden(Exception):
    """403: a valid token outside its scope."""


class KeySet:
    """The verification keys of a JWKS (a file path or an https URL), by key id."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        if kid not in self._keys or now - self._loaded_at > MAX_KEY_AGE_SECONDS:
            async with self._lock:
                if now - self._loaded_at > MIN_REFRESH_SECONDS:
                    await self._load()
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthenticated(f"unknown signing key {kid!r}") from None

    async def _load(self) -> None:
        self._loaded_at = time.monotonic()
        try:
            document = json.loads(await asyncio.to_thread(self._read))
            keys = jwt.PyJWKSet.from_dict(document).keys
        except Exception as exc:  # keep the keys we had; the token then fails as unknown
            get_logger("im.auth").warning("could not load the JWKS", source=self._source, error=f"{type(exc).__name__}: {exc}")
            return
        self._keys = {k.key_id: k for k in keys if k.key_id and k.algorithm_name == ALGORITHM}

    def _read(self) -> str:
        if self._source.startswith("https://"):
            with urllib.request.urlopen(self._source, timeout=5) as answer:  # noqa: S310 (https only)
                return answer.read().decode()
        return Path(self._source).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class _Verified:
    caller: Caller
    key_id: str
    key: jwt.PyJWK
    good_until: float  # monotonic


class Authenticator:
    def __init__(self, jwks: str, issuer: str) -> None:
        self._keys = KeySet(jwks) if jwks else None
        self._issuer = issuer
        self._verified: OrderedDict[str, _Verified] = OrderedDict()  # by token

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> "Authenticator":
        return cls(settings.auth_jwks, settings.auth_issuer)

    async def verify(self, token: str) -> Caller:
        if self._keys is None:
            raise Unauthenticated("this service has no JWKS configured (IM_AUTH_JWKS)")
        verified = self._verified.get(token)
        # Taken again while its key is still the one served (a retired key's tokens fail as before).
        if verified is not None and time.monotonic() < verified.good_until and await self._keys.key(verified.key_id) is verified.key:
            self._verified.move_to_end(token)
            return verified.caller
        verified = await self._check(self._keys, token)
        self._verified[token] = verified
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return verified.caller

    async def _check(self, keys: KeySet, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise Unauthenticated(f"tokens must be signed with {ALGORITHM}")
            key_id = str(header.get("kid", ""))
            key = await keys.key(key_id)
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
            caller = Caller(str(claims["sub"]), Role(claims.get("role")))
        except jwt.PyJWTError as exc:
            raise Unauthenticated(str(exc)) from None
        except ValueError:
            raise Unauthenticated("role must be one of seller, creator, ops") from None
        expires_in = float(claims["exp"]) + CLOCK_SKEW_SECONDS - time.time()
        return _Verified(caller, key_id, key, time.monotonic() + min(VERIFIED_SECONDS, expires_in))


_bearer = HTTPBearer(auto_error=False, scheme_name="bearer", bearerFormat="JWT", description="An Ed25519-signed JWT (DESIGN §7).")


async def authenticated(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> Caller:
    if credentials is None:
        raise Unauthenticated("an Authorization: Bearer token is required")
    caller = await request.app.state.authenticator.verify(credentials.credentials)
    request.state.caller = caller  # the request log names who asked
    return caller


Authenticated = Annotated[Caller, Depends(authenticated)]


def require_party(caller: Caller, *, seller_id: str, creator_id: str | None = None) -> Caller:
    """Ops read everything; a seller reads its own; a creator what is addressed to it."""
    if (
        caller.role is Role.OPS
        or (caller.role is Role.SELLER and caller.sub == seller_id)
        or (caller.role is Role.CREATOR and creator_id is not None and caller.sub == creator_id)
    ):
        return caller
    raise Forbidden(f"a {caller.role} token for {caller.sub!r} does not reach this resource")


# The scopes read the ids from the path the route declares (and validates), so
# the OpenAPI document keeps the route's own parameter definitions.
async def seller_scope(request: Request, caller: Authenticated) -> Caller:
    return require_party(caller, seller_id=request.path_params["seller_id"])


async def conversation_scope(request: Request, caller: Authenticated) -> Caller:
    ids = request.path_params
    return require_party(caller, seller_id=ids["seller_id"], creator_id=ids["creator_id"])


SellerScope = Depends(seller_scope)
ConversationScope = Depends(conversation_scope)


class RequestLog:
    """One log line per /v1 request: method, path, status and who asked (never
    the token or a body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = get_logger("im.http")

    async def __call__(self, scope_: Scope, receive: Receive, send: Send) -> None:
        if scope_["type"] != "http" or not scope_["path"].startswith("/v1/"):
            await self.app(scope_, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope_, receive, sending)
        finally:
            caller = scope_.get("state", {}).get("caller")
            self.log.info(
                "http request",
                method=scope_["method"],
                path=scope_["path"],
                status=status,
                sub=caller.sub if caller else None,
                role=str(caller.role) if caller else None,
            )


def install_auth(app: FastAPI, settings: ServiceSettings) -> None:
    """Token checking, its 401/403 answers and the request log on one service's app."""
    app.state.authenticator = Authenticator.from_settings(settings)

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(_: Request, exc: Unauthenticated) -> JSONResponse:
        return JSONResponse(
            {"error": "UNAUTHENTICATED", "detail": str(exc)},
            status_code=401,
            headers={"WWW-Authenticate": f'Bearer realm="{AUDIENCE}"'},
        )

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse({"error": "FORBIDDEN", "detail": str(exc)}, status_code=403)

    app.add_middleware(RequestLog)
