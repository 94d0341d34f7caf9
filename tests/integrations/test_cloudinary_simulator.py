"""Drive the Cloudinary simulator with the real ``cloudinary`` SDK (and raw httpx for the SPA)."""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import cloudinary
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import httpx
import pytest

from joycart.integrations.simulators.cloudinary import CloudinarySimulator, RecordedRequest, sign


def make_png(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PNG = make_png()


@pytest.fixture(scope="module")
def server() -> Iterator[CloudinarySimulator]:
    sim = CloudinarySimulator()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def sim(server: CloudinarySimulator) -> CloudinarySimulator:
    server.reset()
    return server


def opts(sim: CloudinarySimulator, **extra: Any) -> dict[str, Any]:
    """Per-call SDK options, as the project passes them (no reliance on global config)."""
    return {
        "cloud_name": sim.cloud_name,
        "api_key": sim.api_key,
        "api_secret": sim.api_secret,
        "upload_prefix": sim.base_url,
        "timeout": 5,
        **extra,
    }


def upload(sim: CloudinarySimulator, data: bytes = PNG, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = cloudinary.uploader.upload(io.BytesIO(data), **opts(sim, **extra))
    return result


def test_signing_matches_reference_vector_and_sdk() -> None:
    params = {"timestamp": "1700000000", "folder": "products", "public_id": "abc"}
    assert sign(params, "abcdSECRET") == "303da9b99c3efcc42a6901a466c6bf3fa2811b11"
    tricky = {"timestamp": "1700000000", "context": "a=1&b=2", "tags": "x,y", "empty": ""}
    for algorithm in ("sha1", "sha256"):
        expected = cloudinary.utils.api_sign_request(tricky, "s3cr3t", algorithm)
        assert sign(tricky, "s3cr3t", algorithm) == expected


def test_signed_png_upload(sim: CloudinarySimulator) -> None:
    res = upload(sim, folder="products", public_id="abc", tags=["a", "b"], overwrite=True)

    assert res["public_id"] == "products/abc"
    assert (res["width"], res["height"], res["format"]) == (3, 2, "png")
    assert res["resource_type"] == "image"
    assert res["type"] == "upload"
    assert res["bytes"] == len(PNG)
    assert res["tags"] == ["a", "b"]
    assert res["asset_folder"] == "products"
    assert res["original_filename"] == "stream"
    assert len(res["asset_id"]) == 32
    assert isinstance(res["version"], int)
    assert abs(res["version"] - time.time()) < 60
    assert res["created_at"].endswith("Z")
    assert res["secure_url"].startswith("https://")
    expected = cloudinary.utils.api_sign_request(
        {"public_id": res["public_id"], "version": res["version"]},
        sim.api_secret,
        signature_version=1,
    )
    assert res["signature"] == expected

    old_secret = cloudinary.config().api_secret
    cloudinary.config(api_secret=sim.api_secret)
    try:
        assert cloudinary.utils.verify_api_response_signature(
            res["public_id"], res["version"], res["signature"]
        )
    finally:
        cloudinary.config(api_secret=old_secret)

    assert sim.assets["products/abc"].data == PNG
    (recorded,) = sim.requests
    assert recorded.path == f"/v1_1/{sim.cloud_name}/image/upload"
    assert recorded.file_size == len(PNG)
    assert recorded.fields["folder"] == "products"
    assert recorded.fields["overwrite"] == "1"
    assert recorded.fields["api_key"] == sim.api_key
    with pytest.raises(AttributeError):
        recorded.path = "/elsewhere"  # type: ignore[misc]
    assert isinstance(recorded, RecordedRequest)


def test_returned_url_serves_the_bytes(sim: CloudinarySimulator) -> None:
    res = upload(sim, public_id="served")
    got = httpx.get(res["url"], timeout=5)
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"
    missing = res["url"].replace("served.png", "nope.png")
    assert httpx.get(missing, timeout=5).status_code == 404


def test_per_call_options_override_global_config(sim: CloudinarySimulator) -> None:
    keys = ("cloud_name", "api_key", "api_secret", "upload_prefix")
    saved = {key: getattr(cloudinary.config(), key) for key in keys}
    cloudinary.config(
        cloud_name="wrong", api_key="1", api_secret="nope", upload_prefix="http://127.0.0.1:9"
    )
    try:
        assert upload(sim, public_id="percall")["public_id"] == "percall"
        assert cloudinary.utils.cloudinary_api_url(**opts(sim)).startswith(sim.base_url)
    finally:
        cloudinary.config(**saved)


def test_sha256_signature_accepted(sim: CloudinarySimulator) -> None:
    res = upload(sim, public_id="sha", signature_algorithm="sha256")
    assert res["public_id"] == "sha"
    assert len(sim.requests[0].fields["signature"]) == 64


def test_wrong_secret_is_rejected(sim: CloudinarySimulator) -> None:
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired, match="Invalid Signature"):
        upload(sim, api_secret="not-the-secret")
    assert not sim.assets


def test_wrong_api_key_and_cloud(sim: CloudinarySimulator) -> None:
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired, match="Unknown API key"):
        upload(sim, api_key="999")
    with pytest.raises(cloudinary.exceptions.NotFound, match="Invalid cloud_name"):
        upload(sim, cloud_name="other-cloud")


def test_text_file_is_not_an_image(sim: CloudinarySimulator) -> None:
    with pytest.raises(cloudinary.exceptions.BadRequest, match="Invalid image file"):
        upload(sim, data=b"hello, this is not an image")
    assert not sim.assets


def test_oversized_file_is_rejected(sim: CloudinarySimulator) -> None:
    big = PNG + b"\x00" * (11 * 1024 * 1024)
    with pytest.raises(cloudinary.exceptions.BadRequest, match=r"File size too large\. Got"):
        upload(sim, data=big)
    assert sim.requests[0].file_size == len(big)


def test_stale_timestamp_is_rejected(
    sim: CloudinarySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = str(int(time.time()) - 3700)
    # uploader.upload ignores a `timestamp=` option (build_upload_params always uses now()),
    # so make the SDK's clock lie instead.
    monkeypatch.setattr(cloudinary.utils, "now", lambda: stale)
    with pytest.raises(cloudinary.exceptions.BadRequest, match="Stale request"):
        upload(sim)
    assert sim.requests[0].fields["timestamp"] == stale


def test_timestamp_option_is_ignored_by_sdk_upload(sim: CloudinarySimulator) -> None:
    upload(sim, timestamp=1_000_000_000)
    assert abs(int(sim.requests[0].fields["timestamp"]) - time.time()) < 60


def test_destroy(sim: CloudinarySimulator) -> None:
    res = upload(sim, folder="products", public_id="gone")
    assert cloudinary.uploader.destroy("products/gone", **opts(sim)) == {"result": "ok"}
    assert "products/gone" not in sim.assets
    assert httpx.get(res["url"], timeout=5).status_code == 404
    assert cloudinary.uploader.destroy("products/gone", **opts(sim)) == {"result": "not found"}
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired):
        cloudinary.uploader.destroy("products/gone", **opts(sim, api_secret="bad"))


def test_fault_500_is_general_error(sim: CloudinarySimulator) -> None:
    sim.inject("upload", "500")
    assert sim.faults_pending() == 1
    with pytest.raises(cloudinary.exceptions.GeneralError, match="General Error"):
        upload(sim, public_id="f500")
    assert not sim.assets
    assert sim.faults_pending() == 0
    assert upload(sim, public_id="f500")["public_id"] == "f500"


def test_fault_html502_is_plain_error(sim: CloudinarySimulator) -> None:
    sim.inject("destroy", "html502", times=2)
    upload(sim, public_id="kept")
    for _ in range(2):
        with pytest.raises(
            cloudinary.exceptions.Error, match=r"Error parsing server response \(502"
        ):
            cloudinary.uploader.destroy("kept", **opts(sim))
    assert "kept" in sim.assets
    assert cloudinary.uploader.destroy("kept", **opts(sim)) == {"result": "ok"}


def test_fault_slow_times_out_but_acts(sim: CloudinarySimulator) -> None:
    sim.inject("upload", "slow", delay=1.0)
    with pytest.raises(cloudinary.exceptions.Error, match="Unexpected error"):
        upload(sim, public_id="slowpoke", timeout=0.3)
    assert "slowpoke" in sim.assets
    assert len(sim.requests) == 1


def test_faults_api(sim: CloudinarySimulator) -> None:
    with pytest.raises(ValueError, match="bad fault spec"):
        sim.inject("upload", "explode")
    sim.inject("upload", "500", times=3)
    sim.inject("destroy", "html502")
    assert sim.faults_pending() == 4
    sim.clear_faults()
    assert sim.faults_pending() == 0
    sim.inject("upload", "500")
    sim.reset()
    assert sim.faults_pending() == 0
    assert sim.requests == []
    assert sim.cloudinary_url == f"cloudinary://{sim.api_key}:{sim.api_secret}@{sim.cloud_name}"


def test_browser_direct_upload_with_server_signature(sim: CloudinarySimulator) -> None:
    ts = int(time.time())
    params = {"timestamp": ts, "folder": "products/x"}
    signature = cloudinary.utils.api_sign_request(params, sim.api_secret)
    url = f"{sim.base_url}/v1_1/{sim.cloud_name}/image/upload"
    data = {"api_key": sim.api_key, "timestamp": str(ts), "folder": "products/x"}
    files = {"file": ("photo.png", PNG, "image/png")}
    got = httpx.post(url, data={**data, "signature": signature}, files=files, timeout=5)
    assert got.status_code == 200, got.text
    body = got.json()
    prefix, _, generated = body["public_id"].rpartition("/")
    assert prefix == "products/x"
    assert len(generated) == 20
    assert generated.isalnum()
    assert generated == generated.lower()
    assert body["original_filename"] == "photo"

    smuggled = {**data, "signature": signature, "public_id": "hijack"}
    denied = httpx.post(url, data=smuggled, files=files, timeout=5)
    assert denied.status_code == 401
    assert (
        "String to sign - 'folder=products/x&public_id=hijack" in denied.json()["error"]["message"]
    )

    old = {**data, "timestamp": str(ts - 7200)}
    old_sig = cloudinary.utils.api_sign_request({**params, "timestamp": ts - 7200}, sim.api_secret)
    stale = httpx.post(url, data={**old, "signature": old_sig}, files=files, timeout=5)
    assert stale.status_code == 400
    assert "Stale request" in stale.json()["error"]["message"]


def test_unsigned_upload_needs_whitelisted_preset(sim: CloudinarySimulator) -> None:
    unsigned_opts = {"cloud_name": sim.cloud_name, "upload_prefix": sim.base_url, "timeout": 5}
    with pytest.raises(cloudinary.exceptions.BadRequest, match="whitelisted"):
        cloudinary.uploader.unsigned_upload(io.BytesIO(PNG), "spa", **unsigned_opts)
    sim.unsigned_presets.add("spa")
    try:
        res = cloudinary.uploader.unsigned_upload(io.BytesIO(PNG), "spa", **unsigned_opts)
    finally:
        sim.unsigned_presets.discard("spa")
    assert res["format"] == "png"
    assert "signature" not in sim.requests[-1].fields


def test_missing_file_and_raw_upload(sim: CloudinarySimulator) -> None:
    with pytest.raises(cloudinary.exceptions.BadRequest, match="Missing required parameter - file"):
        cloudinary.uploader.upload(None, **opts(sim))
    res = cloudinary.uploader.upload(
        io.BytesIO(b"a,b\n1,2\n"), **opts(sim, resource_type="raw", filename="data.csv")
    )
    assert (res["resource_type"], res["format"]) == ("raw", "csv")
    assert httpx.get(res["url"], timeout=5).content == b"a,b\n1,2\n"
