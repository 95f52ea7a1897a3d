"""Cloudflare Stream signed playback tokens, made locally (no API call per view).

A token is an RS256 JWT whose header names the signing key (`kid`) and whose claims name the
video (`sub`), the key again (`kid`), a short expiry (`exp`) and a not-before (`nbf`).
"""

import base64
import time

import jwt
from django.conf import settings

EMBED_HOST = "https://iframe.videodelivery.net"


def signing_configured():
    return bool(settings.STREAM_SIGNING_KEY_ID and settings.STREAM_SIGNING_KEY_PEM)


def _private_key():
    pem = settings.STREAM_SIGNING_KEY_PEM.strip()
    if not pem.startswith("-----BEGIN"):
        pem = base64.b64decode(pem).decode()
    return pem


def sign(video_uid, *, ttl=None, access_rules=None, now=None):
    now = int(now or time.time())
    claims = {
        "sub": video_uid,
        "kid": settings.STREAM_SIGNING_KEY_ID,
        "exp": now + (ttl or settings.STREAM_TOKEN_TTL),
        "nbf": now - 60,
        "downloadable": False,
    }
    if access_rules:
        claims["accessRules"] = access_rules
    return jwt.encode(
        claims, _private_key(), algorithm="RS256", headers={"kid": settings.STREAM_SIGNING_KEY_ID}
    )


def embed_url(video_uid):
    """The iframe address: a signed token when keys are set, the public uid otherwise."""
    host = (
        f"https://customer-{settings.STREAM_CUSTOMER_CODE}.cloudflarestream.com"
        if settings.STREAM_CUSTOMER_CODE
        else EMBED_HOST
    )
    if signing_configured():
        return (
            f"{host}/{sign(video_uid)}/iframe"
            if settings.STREAM_CUSTOMER_CODE
            else (f"{host}/{sign(video_uid)}")
        )
    return f"{host}/{video_uid}/iframe" if settings.STREAM_CUSTOMER_CODE else f"{host}/{video_uid}"
