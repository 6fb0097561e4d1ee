"""The peer of the api benchmark: FastAPI + uvicorn (Debian packages) serving the same
fund overview JSON as paimon-api, behind the same JWT check (HS256 pinned, exp, iss,
typ "access", the claims the gateway requires), in the same success envelope with a
request id. It also serves /v1/fund/overview the way the risk service's internal API
would, as the upstream the gateway proxies (and caches) in the benchmark.

Run: BENCH_JWT_SECRET=... BENCH_JWT_ISSUER=paimon-api \
     /usr/bin/python3 -m uvicorn --app-dir tests/bench api_bench:app --port N --workers W
"""
import os
import time
import uuid
from datetime import datetime, timezone

import jwt
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

SECRET = os.environ["BENCH_JWT_SECRET"].encode()
ISSUER = os.environ.get("BENCH_JWT_ISSUER", "paimon-api")
ROLES = {"super_admin", "admin", "operator", "viewer"}

# What the risk service reports; amounts are base-unit strings as everywhere else.
OVERVIEW = {
    "nav": "1003421850000000000000000",
    "navPerShare": "1004213000000000000",
    "totalSupply": "999200000000000000000000",
    "asOf": "2026-11-23T10:00:00.000Z",
    "tiers": [
        {"tier": "L1", "value": "120410622000000000000000", "ratio": "0.1200"},
        {"tier": "L2", "value": "301026555000000000000000", "ratio": "0.3000"},
        {"tier": "L3", "value": "581984673000000000000000", "ratio": "0.5800"},
    ],
    "pendingRedemptions": {"count": 14, "amount": "48210000000000000000000"},
    "paused": False,
}

app = FastAPI()


def envelope(status, body, rid):
    body["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    body["requestId"] = rid
    return JSONResponse(body, status_code=status, headers={"X-Request-Id": rid})


def unauthorized(rid):
    return envelope(401, {"success": False, "error": {"code": "unauthorized",
                    "message": "missing or invalid credentials", "details": None}}, rid)


@app.get("/api/v1/fund/overview")
def fund_overview(authorization: str = Header(default=""), x_request_id: str = Header(default="")):
    rid = x_request_id or str(uuid.uuid4())
    if not authorization.startswith("Bearer "):
        return unauthorized(rid)
    try:
        claims = jwt.decode(authorization[7:], SECRET, algorithms=["HS256"], issuer=ISSUER,
                            leeway=5, options={"require": ["exp", "iss", "sub"]})
    except jwt.PyJWTError:
        return unauthorized(rid)
    if (claims.get("typ") != "access" or claims.get("role") not in ROLES
            or not isinstance(claims.get("jti"), str)):
        return unauthorized(rid)
    return envelope(200, {"success": True, "data": OVERVIEW}, rid)


@app.get("/v1/fund/overview")
def internal_overview():
    return {"success": True, "data": OVERVIEW}
