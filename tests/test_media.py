"""Protected lesson files: R2/S3 presigned links, local signed links, audit, limits, Stream."""

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import Client

from commerce.access import stream
from commerce.models import DownloadEvent
from courses.models import LessonResource
from tests.helpers import entitle

PDF = b"%PDF-1.4 the paid slides\n" + bytes(range(256)) * 40


def attach(lesson, name="slides.pdf", data=PDF):
    resource = LessonResource(lesson=lesson, title="Slides", description="The deck")
    resource.file.save(name, ContentFile(data), save=True)
    return resource


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


# --- local storage (the default, offline demo) ---------------------------------------------


def test_an_entitled_learner_downloads_through_a_short_lived_local_link(
    client, course, paid_lesson, learner
):
    resource = attach(paid_lesson)
    entitle(learner, course)
    client.force_login(learner)
    response = client.get(f"/downloads/{resource.pk}/")
    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]
    link = response["Location"]
    assert link.startswith("/downloads/file/")
    fetched = client.get(link)
    assert fetched.status_code == 200
    assert b"".join(fetched.streaming_content) == PDF
    assert fetched["Content-Disposition"].startswith('attachment; filename="slides')
    assert "no-store" in fetched["Cache-Control"]


def test_the_download_writes_an_audit_row(client, course, paid_lesson, learner):
    resource = attach(paid_lesson)
    entitle(learner, course)
    client.force_login(learner)
    client.get(f"/downloads/{resource.pk}/", HTTP_USER_AGENT="pytest-agent")
    row = DownloadEvent.objects.get()
    assert (row.user, row.resource, row.course_id, row.lesson_id) == (
        learner,
        resource,
        course.pk,
        paid_lesson.pk,
    )
    assert row.ip == "127.0.0.1" and row.user_agent == "pytest-agent"


def test_an_anonymous_visitor_is_sent_to_log_in_and_nothing_is_logged(client, paid_lesson):
    resource = attach(paid_lesson)
    response = client.get(f"/downloads/{resource.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not DownloadEvent.objects.exists()


def test_a_learner_without_access_gets_the_locked_page(client, paid_lesson, learner):
    resource = attach(paid_lesson)
    client.force_login(learner)
    response = client.get(f"/downloads/{resource.pk}/")
    assert response.status_code == 403 and b"Locked" in response.content
    assert not DownloadEvent.objects.exists()


def test_revoked_access_is_refused(client, course, paid_lesson, learner):
    resource = attach(paid_lesson)
    entitle(learner, course, status="revoked", reason="refunded in full")
    client.force_login(learner)
    assert client.get(f"/downloads/{resource.pk}/").status_code == 403


def test_files_of_a_free_preview_follow_the_lessons_rule(client, preview_lesson):
    resource = attach(preview_lesson, "intro.pdf")
    response = client.get(f"/downloads/{resource.pk}/")
    assert response.status_code == 302
    assert b"".join(client.get(response["Location"]).streaming_content) == PDF


def test_a_forged_local_link_is_refused(client, db):
    response = client.get("/downloads/file/not-a-real-token/")
    assert response.status_code == 403


def test_an_expired_local_link_is_refused(client, course, paid_lesson, learner, settings):
    resource = attach(paid_lesson)
    entitle(learner, course)
    client.force_login(learner)
    link = client.get(f"/downloads/{resource.pk}/")["Location"]
    settings.SIGNED_URL_TTL = -1
    assert client.get(link).status_code == 410


def test_the_download_rate_limit_answers_429(client, course, paid_lesson, learner, settings):
    settings.DOWNLOAD_RATE = "3/h"
    resource = attach(paid_lesson)
    entitle(learner, course)
    client.force_login(learner)
    codes = [client.get(f"/downloads/{resource.pk}/").status_code for _ in range(4)]
    assert codes == [302, 302, 302, 429]
    assert DownloadEvent.objects.count() == 3


def test_private_files_are_not_under_the_public_media_root(paid_lesson, settings):
    resource = attach(paid_lesson)
    assert str(settings.MEDIA_ROOT) not in resource.file.path or "private" in resource.file.path
    assert Client().get("/media/" + resource.file.name).status_code == 404


def test_the_lesson_page_links_the_endpoint_never_a_file_address(
    client, course, paid_lesson, learner
):
    resource = attach(paid_lesson)
    entitle(learner, course)
    client.force_login(learner)
    html = client.get(paid_lesson.url).content.decode()
    assert f"/downloads/{resource.pk}/" in html
    assert "X-Amz" not in html and "/downloads/file/" not in html
    assert resource.file.name not in html


def test_an_unknown_file_is_404(client, db):
    assert client.get("/downloads/999999/").status_code == 404


def test_a_resource_with_a_forbidden_extension_is_refused_by_validation(paid_lesson):
    from django.core.exceptions import ValidationError

    resource = LessonResource(lesson=paid_lesson, title="x")
    resource.file.save("run.exe", ContentFile(b"MZ"), save=False)
    with pytest.raises(ValidationError):
        resource.full_clean()


# --- R2 / S3 through a real S3-protocol server ---------------------------------------------


@pytest.fixture(scope="module")
def s3_server():
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket="lessons")
    yield url
    server.stop()


@pytest.fixture
def r2(s3_server, settings, monkeypatch):
    """The private storage pointed at the S3 server exactly as production points it at R2."""
    from config.storage import r2_private_storage

    settings.STORAGES = {
        **settings.STORAGES,
        "private": r2_private_storage(
            bucket="lessons",
            endpoint_url=s3_server,
            access_key="test",
            secret_key="test",
            ttl=settings.SIGNED_URL_TTL,
        ),
    }
    monkeypatch.setattr(LessonResource._meta.get_field("file"), "storage", storages["private"])
    return storages["private"]


def test_an_entitled_learner_gets_a_presigned_r2_link_and_the_bytes(
    client, course, paid_lesson, learner, r2, settings
):
    resource = attach(paid_lesson, "deck.pdf")
    assert r2.exists(resource.file.name)
    entitle(learner, course)
    client.force_login(learner)
    response = client.get(f"/downloads/{resource.pk}/")
    assert response.status_code == 302 and "no-store" in response["Cache-Control"]
    link = response["Location"]
    query = parse_qs(urlsplit(link).query)
    assert link.startswith(r2.endpoint_url if hasattr(r2, "endpoint_url") else "http://127.0.0.1")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert 0 < int(query["X-Amz-Expires"][0]) <= settings.SIGNED_URL_TTL <= 300
    assert "X-Amz-Signature" in query and "X-Amz-Credential" in query
    assert query["response-content-disposition"] == [f'attachment; filename="{resource.filename}"']
    fetched = requests.get(link, timeout=30)
    assert fetched.status_code == 200 and fetched.content == PDF
    assert fetched.headers.get("Content-Disposition", "").startswith("attachment")


def test_the_raw_object_address_is_not_public(client, paid_lesson, r2, s3_server):
    resource = attach(paid_lesson, "secret.pdf")
    raw = f"{s3_server}/lessons/{resource.file.name}"
    assert "X-Amz" not in raw
    # moto does not enforce signatures (see docs/media.md); R2 answers 400/403 to this.
    assert r2.url(resource.file.name) != raw


def test_r2_downloads_are_refused_and_audited_like_local_ones(
    client, course, paid_lesson, learner, r2
):
    resource = attach(paid_lesson)
    client.force_login(learner)
    assert client.get(f"/downloads/{resource.pk}/").status_code == 403
    entitle(learner, course)
    assert client.get(f"/downloads/{resource.pk}/").status_code == 302
    assert DownloadEvent.objects.count() == 1


def test_the_local_link_route_never_serves_remote_files(client, course, paid_lesson, learner, r2):
    from django.core import signing

    from commerce.access.delivery import SALT

    resource = attach(paid_lesson)
    token = signing.dumps({"r": resource.pk}, salt=SALT, compress=True)
    assert client.get(f"/downloads/file/{token}/").status_code == 404


# --- Cloudflare Stream -----------------------------------------------------------------------


@pytest.fixture
def stream_keys(settings):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    import base64

    settings.STREAM_SIGNING_KEY_ID = "3c5b1a0e0c0d4e7f8a9b0c1d2e3f4a5b"
    settings.STREAM_SIGNING_KEY_PEM = base64.b64encode(pem.encode()).decode()
    settings.STREAM_TOKEN_TTL = 600
    return key.public_key()


VIDEO = "ea95132c15732412d22c1476fa83f27a"


def test_a_stream_token_is_rs256_with_kid_sub_and_a_short_life(stream_keys, settings):
    token = stream.sign(VIDEO)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "kid": settings.STREAM_SIGNING_KEY_ID, "typ": "JWT"}
    claims = jwt.decode(token, stream_keys, algorithms=["RS256"])
    assert claims["sub"] == VIDEO and claims["kid"] == settings.STREAM_SIGNING_KEY_ID
    assert claims["nbf"] <= time.time() < claims["exp"] <= time.time() + 600


def test_a_stream_token_does_not_verify_with_another_key(stream_keys):
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(stream.sign(VIDEO), other, algorithms=["RS256"])


def stream_lesson(lesson):
    lesson.body = [{"type": "stream_video", "value": {"video_uid": VIDEO, "caption": "Intro"}}]
    lesson.save_revision().publish()
    return lesson


def test_only_learners_with_access_get_a_signed_player(
    client, course, paid_lesson, learner, stream_keys
):
    stream_lesson(paid_lesson)
    client.force_login(learner)
    assert client.get(paid_lesson.url).status_code == 403
    entitle(learner, course)
    html = client.get(paid_lesson.url).content.decode()
    src = re.search(r'<iframe src="([^"]+)"', html).group(1)
    token = src.rsplit("/", 1)[-1]
    assert VIDEO not in src
    assert jwt.decode(token, stream_keys, algorithms=["RS256"])["sub"] == VIDEO


def test_without_keys_the_public_embed_is_used(client, course, paid_lesson, learner, settings):
    settings.STREAM_SIGNING_KEY_ID = settings.STREAM_SIGNING_KEY_PEM = ""
    stream_lesson(paid_lesson)
    entitle(learner, course)
    client.force_login(learner)
    html = client.get(paid_lesson.url).content.decode()
    assert f"https://iframe.videodelivery.net/{VIDEO}" in html


# --- presigned URL expiry, against s3rver (which enforces it; moto does not) ----------------

S3RVER = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "s3rver"


@pytest.fixture(scope="module")
def s3rver(tmp_path_factory):
    import socket
    import subprocess

    import boto3

    if not S3RVER.exists():
        pytest.skip("s3rver is not installed (make test runs npm ci)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            str(S3RVER),
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            "--silent",
            "--directory",
            str(tmp_path_factory.mktemp("s3rver")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="S3RVER",
        aws_secret_access_key="S3RVER",
    )
    deadline = time.time() + 20
    while True:
        try:
            client.create_bucket(Bucket="lessons")
            break
        except Exception:
            if time.time() > deadline:
                proc.kill()
                raise
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_an_expired_presigned_link_is_refused_by_the_server(
    client, course, paid_lesson, learner, s3rver, settings, monkeypatch
):
    from config.storage import r2_private_storage

    # X-Amz-Date is to the second: a 1 s link signed at x.9 s has a tenth of a second to
    # live. Three seconds leave two at least.
    settings.SIGNED_URL_TTL = 3
    settings.STORAGES = {
        **settings.STORAGES,
        "private": r2_private_storage(
            bucket="lessons", endpoint_url=s3rver, access_key="S3RVER", secret_key="S3RVER", ttl=3
        ),
    }
    monkeypatch.setattr(LessonResource._meta.get_field("file"), "storage", storages["private"])
    resource = attach(paid_lesson, "expiring.pdf")
    entitle(learner, course)
    client.force_login(learner)
    link = client.get(f"/downloads/{resource.pk}/")["Location"]
    assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == ["3"]
    fresh = requests.get(link, timeout=30)
    assert fresh.status_code == 200 and fresh.content == PDF
    assert fresh.headers["Content-Disposition"] == f'attachment; filename="{resource.filename}"'
    time.sleep(4.5)
    stale = requests.get(link, timeout=30)
    assert stale.status_code == 403 and "Request has expired" in stale.text
