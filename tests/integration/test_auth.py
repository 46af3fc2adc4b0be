"""DESIGN §7 on the running services: every /v1 route needs a valid token and
answers only inside the token's scope; health, readiness and metrics stay open.

The routes are read from each service's OpenAPI document, so a new route that
forgets its scope dependency fails here (401 without a token, 403 out of scope)."""

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

import httpx
import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.common import tokens
from services.common.auth import AUDIENCE
from tests.harness import Suite, unique
from tests.integration.collaboration_card.support import COLLABORATION, product_card, send, wait_until


def v1_routes(suite: Suite) -> dict[str, list[str]]:
    """Every /v1 path of every running service's OpenAPI document."""
    return {
        name: [path for path in runtime.http_app.openapi()["paths"] if path.startswith("/v1/")]
        for name, runtime in suite.runtimes.items()
    }


def filled(path: str, **ids: str) -> str:
    return re.sub(r"\{([a-z_]+)\}", lambda m: ids.get(m.group(1)) or unique("x"), path)


async def get(suite: Suite, service: str, path: str, token: str | None = None, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=suite.runtimes[service].http_app)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{service}", headers=headers) as http:
        return await http.get(path)


def test_every_v1_route_documents_the_bearer_scheme(suite: Suite) -> None:
    """(That each one enforces it, and its scope, the tests below prove route by route.)"""
    documented = v1_routes(suite)
    assert sum(map(len, documented.values())) >= 10
    for name, runtime in suite.runtimes.items():
        document = runtime.http_app.openapi()
        assert document["components"]["securitySchemes"]["bearer"] == {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "An Ed25519-signed JWT (DESIGN §7).",
        }
        for path in documented[name]:
            assert document["paths"][path]["get"]["security"] == [{"bearer": []}], (name, path)


def hmac_signed(claims: dict[str, Any], kid: str, secret: bytes) -> str:
    """HS256 keyed with public material (the classic algorithm confusion; PyJWT itself refuses to make one)."""
    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).decode().rstrip("=")

    signed = f"{part(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}.{part(json.dumps(claims).encode())}"
    return f"{signed}.{part(hmac.new(secret, signed.encode(), hashlib.sha256).digest())}"


def forged(suite: Suite) -> dict[str, str]:
    """Tokens that must all be refused, each wrong in one way."""
    now = int(time.time())
    claims = {"sub": "ops-1", "role": "ops", "aud": AUDIENCE, "iss": suite.runtimes["quota"].settings.auth_issuer, "iat": now, "exp": now + 600}
    signing = tokens.signing_key(suite.auth_dir)
    kid = tokens.public_jwk(signing)["kid"]
    other = Ed25519PrivateKey.generate()
    valid = suite.token("ops", "ops-1")
    head, body, signature = valid.split(".")
    bad_signature = f"{head}.{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    return {
        "bad signature": bad_signature,
        "other key, same key id": jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": kid}),
        "other key, its own id": jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": tokens.public_jwk(other)["kid"]}),
        "expired": suite.token("ops", "ops-1", ttl=-120),
        "wrong audience": suite.token("ops", "ops-1", audience="someone-else"),
        "wrong issuer": suite.token("ops", "ops-1", issuer="someone-else"),
        "no exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, signing, algorithm="EdDSA", headers={"kid": kid}),
        "unknown role": jwt.encode({**claims, "role": "admin"}, signing, algorithm="EdDSA", headers={"kid": kid}),
        "alg none": jwt.encode(claims, None, algorithm="none", headers={"kid": kid}),
        "HMAC keyed with the public key": hmac_signed(claims, kid, tokens.public_jwk(signing)["x"].encode()),
        "not a JWT": "not-a-token",
    }


async def test_no_token_or_an_invalid_one_is_401_on_every_route(suite: Suite) -> None:
    bad = forged(suite)
    for service, paths in v1_routes(suite).items():
        for path in paths:
            url = filled(path)
            answer = await get(suite, service, url)
            assert answer.status_code == 401, (service, url, answer.text)
            assert answer.json()["error"] == "UNAUTHENTICATED"
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            for why, token in bad.items():
                answer = await get(suite, service, url, token)
                assert (answer.status_code, answer.json()["error"]) == (401, "UNAUTHENTICATED"), (service, url, why, answer.text)
            basic = await get(suite, service, url, Authorization="Basic b3BzOm9wcw==")
            assert basic.status_code == 401, (service, url)


async def test_a_token_within_the_clock_skew_is_accepted(suite: Suite) -> None:
    seller = unique("s")
    answer = await get(suite, "quota", f"/v1/sellers/{seller}/quota", suite.token("seller", seller, ttl=-30))
    assert answer.status_code == 200, answer.text


async def test_health_readiness_and_metrics_need_no_token(suite: Suite) -> None:
    for service in suite.runtimes:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await get(suite, service, path)).status_code == 200, (service, path)


async def a_card_of(suite: Suite, seller: str, creator: str) -> str:
    card_id = await send(suite, product_card(seller, creator))

    async def exists() -> bool:
        return (await get(suite, COLLABORATION, f"/v1/cards/{card_id}", suite.token())).status_code == 200

    await wait_until(exists)
    return card_id


async def test_a_seller_reads_only_its_own(suite: Suite) -> None:
    """Seller A's token on seller B's resources: 403 FORBIDDEN on every route; on its own, 200."""
    seller_a, seller_b, creator = unique("sa"), unique("sb"), unique("c")
    card_b = await a_card_of(suite, seller_b, creator)
    token_a = suite.token("seller", seller_a)
    for service, paths in v1_routes(suite).items():
        for path in paths:
            theirs = filled(path, seller_id=seller_b, card_id=card_b)
            answer = await get(suite, service, theirs, token_a)
            assert (answer.status_code, answer.json()["error"]) == (403, "FORBIDDEN"), (service, theirs, answer.text)
            if "{seller_id}" in path:
                own = filled(path, seller_id=seller_a)
                assert (await get(suite, service, own, token_a)).status_code in (200, 404), (service, own)
    card_a = await a_card_of(suite, seller_a, creator)
    assert (await get(suite, COLLABORATION, f"/v1/cards/{card_a}", token_a)).status_code == 200


async def test_a_creator_reads_its_conversations_and_cards_only(suite: Suite) -> None:
    seller, creator, other = unique("s"), unique("c"), unique("c")
    card_id = await a_card_of(suite, seller, creator)
    token = suite.token("creator", creator)
    messages = f"/v1/conversations/{seller}/{creator}/messages"
    assert (await get(suite, "messaging", messages, token)).status_code == 200
    assert (await get(suite, COLLABORATION, f"/v1/cards/{card_id}", token)).status_code == 200

    someone_else = suite.token("creator", other)
    assert (await get(suite, "messaging", messages, someone_else)).status_code == 403
    assert (await get(suite, COLLABORATION, f"/v1/cards/{card_id}", someone_else)).status_code == 403
    # A creator never reads a seller's own views, even of its own conversation.
    for service, paths in v1_routes(suite).items():
        for path in paths:
            if path.startswith("/v1/sellers/"):
                url = filled(path, seller_id=seller, creator_id=creator)
                answer = await get(suite, service, url, token)
                assert (answer.status_code, answer.json()["error"]) == (403, "FORBIDDEN"), (service, url)


async def test_a_seller_token_does_not_pass_for_the_creator_of_the_same_id(suite: Suite) -> None:
    """Scope goes by role and id together: a seller token whose sub equals the creator id is refused."""
    seller, creator = unique("s"), unique("c")
    answer = await get(suite, "messaging", f"/v1/conversations/{seller}/{creator}/messages", suite.token("seller", creator))
    assert answer.status_code == 403


async def test_ops_reads_everything(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    card_id = await a_card_of(suite, seller, creator)
    for service, paths in v1_routes(suite).items():
        for path in paths:
            url = filled(path, seller_id=seller, creator_id=creator, card_id=card_id)
            answer = await get(suite, service, url, suite.token("ops", "ops-1"))
            assert answer.status_code in (200, 404), (service, url, answer.text)
            assert answer.json().get("error") not in ("UNAUTHENTICATED", "FORBIDDEN")


async def test_the_request_log_names_the_caller_and_never_the_token(suite: Suite) -> None:
    seller = unique("s")
    token = suite.token("seller", seller)
    with structlog.testing.capture_logs() as logs:
        assert (await get(suite, "quota", f"/v1/sellers/{seller}/quota", token)).status_code == 200
        assert (await get(suite, "quota", f"/v1/sellers/{seller}/quota", token + "x")).status_code == 401
    requests = [line for line in logs if line["event"] == "http request"]
    assert [(r["sub"], r["role"], r["status"]) for r in requests] == [(seller, "seller", 200), (None, None, 401)]
    assert token not in repr(logs) and token.split(".")[2] not in repr(logs)
