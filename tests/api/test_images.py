"""Product images over HTTP: multipart uploads to the local store and, through the real cloudinary
SDK, to the fake Cloudinary; removal through the worker; signed direct browser uploads."""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import cloudinary.exceptions
import httpx
import pytest
from sqlalchemy import select, text

from joycart import worker
from joycart.bootstrap import Services
from joycart.errors import ImageStoreUnavailable, NotFound
from joycart.integrations.cloudinary import CloudinaryImageStore
from joycart.integrations.images import ImageStore, LocalImageStore, StoredImage
from joycart.integrations.simulators.cloudinary import CloudinarySimulator
from joycart.models import User
from joycart.resolvers.images import add_product_image
from tests.helpers import Account, Api


def make_png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x7f\x00\x00" * width for _ in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))


PNG = make_png()

UPLOAD = """mutation($p: ID!, $f: Upload!) { uploadProductImage(productId: $p, file: $f) {
    product { id images { id url } } errors { code message field } } }"""
REMOVE = """mutation($i: ID!) { removeProductImage(imageId: $i) {
    product { id images { id url } } errors { code message field } } }"""
TICKET = """mutation($p: ID!) { createImageUploadTicket(productId: $p) {
    ticket { uploadUrl cloudName apiKey timestamp folder allowedFormats signature }
    errors { code message field } } }"""
ATTACH = """mutation($p: ID!, $input: AttachUploadedImageInput!) {
    attachUploadedImage(productId: $p, input: $input) {
        product { id images { id url } } errors { code message field } } }"""


async def upload(
    http: httpx.AsyncClient,
    token: str | None,
    product_id: str,
    data: bytes,
    *,
    filename: str = "photo.png",
    content_type: str = "image/png",
) -> httpx.Response:
    """One file by the GraphQL multipart request spec: `operations`, `map`, then the file part."""
    operations = {"query": UPLOAD, "variables": {"p": product_id, "f": None}}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.f"]})},
        files={"0": (filename, data, content_type)},
        headers=headers,
    )


async def upload_payload(
    http: httpx.AsyncClient, token: str | None, product_id: str, data: bytes, **kw: str
) -> dict[str, Any]:
    response = await upload(http, token, product_id, data, **kw)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["uploadProductImage"]
    return payload


async def image_rows(services: Services) -> list[dict[str, Any]]:
    async with services.engine.connect() as conn:
        rows = await conn.execute(text("SELECT * FROM product_images ORDER BY created_at, id"))
        return [dict(r._mapping) for r in rows]


async def delete_jobs(services: Services) -> list[dict[str, Any]]:
    async with services.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT * FROM jobs WHERE kind = 'delete_image' ORDER BY id")
        )
        return [dict(r._mapping) for r in rows]


def local_files(services: Services, product_id: str) -> list[Path]:
    store = services.images
    assert isinstance(store, LocalImageStore)
    folder = store.root / "products" / product_id
    return sorted(folder.iterdir()) if folder.is_dir() else []


async def seller_row(services: Services, account: Account) -> User:
    async with services.sessions() as session:
        user = await session.scalar(select(User).where(User.id == uuid.UUID(account.id)))
    assert user is not None
    return user


@pytest.fixture
async def seller(api: Api) -> Account:
    return await api.register("SELLER")


@pytest.fixture
async def product_id(api: Api, seller: Account) -> str:
    return await api.create_product(seller)


@pytest.fixture
def cloud(
    services: Services, cloudinary_sim: CloudinarySimulator
) -> Iterator[CloudinaryImageStore]:
    """The app's image store is the real SDK talking to the fake Cloudinary, for one test."""
    store = CloudinaryImageStore(
        cloudinary_sim.cloudinary_url, api_url=cloudinary_sim.base_url, timeout=5
    )
    previous = services.images
    services.images = store
    try:
        yield store
    finally:
        services.images = previous


# --------------------------------------------------------------------------- local store


async def test_uploaded_image_is_served_back_byte_for_byte(
    api: Api, services: Services, seller: Account, product_id: str
) -> None:
    # The client calls it a JPEG; the bytes say PNG, and the bytes win.
    payload = await upload_payload(
        api.http, seller.token, product_id, PNG, filename="photo.jpg", content_type="image/jpeg"
    )
    assert payload["errors"] == []
    [image] = payload["product"]["images"]
    assert image["url"].startswith(f"/images/products/{product_id}/")
    assert image["url"].endswith(".png")

    served = await api.http.get(image["url"])
    assert served.status_code == 200
    assert served.content == PNG
    [row] = await image_rows(services)
    assert (row["store"], row["content_type"], row["size_bytes"]) == (
        "LOCAL",
        "image/png",
        len(PNG),
    )
    assert str(row["id"]) == image["id"]


async def test_eleven_megabyte_file_is_refused_and_nothing_stored(
    api: Api, services: Services, seller: Account, product_id: str
) -> None:
    big = PNG + b"\x00" * (11 * 1024 * 1024)
    response = await upload(api.http, seller.token, product_id, big)
    if response.status_code == 200:
        payload = response.json()["data"]["uploadProductImage"]
        assert [e["code"] for e in payload["errors"]] == ["INVALID_INPUT"]
    else:
        assert response.status_code == 413
    assert await image_rows(services) == []
    assert local_files(services, product_id) == []


async def test_file_one_byte_over_ten_megabytes_is_invalid_input(
    api: Api, services: Services, seller: Account, product_id: str
) -> None:
    over = PNG + b"\x00" * (10 * 1024 * 1024 + 1 - len(PNG))
    payload = await upload_payload(api.http, seller.token, product_id, over)
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_INPUT", "file")]
    assert await image_rows(services) == []
    assert local_files(services, product_id) == []


async def test_text_file_named_png_is_refused(
    api: Api, services: Services, seller: Account, product_id: str
) -> None:
    payload = await upload_payload(api.http, seller.token, product_id, b"just some notes\n" * 20)
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_INPUT", "file")]
    assert await image_rows(services) == []
    assert local_files(services, product_id) == []


async def test_upload_without_authorization_header_is_refused(
    api: Api, services: Services, product_id: str
) -> None:
    # What a cross-site form post would look like: cookies maybe, but no Authorization header.
    payload = await upload_payload(api.http, None, product_id, PNG)
    assert [e["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"]
    assert await image_rows(services) == []
    assert local_files(services, product_id) == []


async def test_upload_by_buyer_or_other_seller_stores_nothing(
    api: Api, services: Services, product_id: str
) -> None:
    buyer = await api.register("USER")
    rival = await api.register("SELLER")
    for account, code in ((buyer, "FORBIDDEN"), (rival, "NOT_FOUND")):
        payload = await upload_payload(api.http, account.token, product_id, PNG)
        assert [e["code"] for e in payload["errors"]] == [code]
    assert await image_rows(services) == []
    assert local_files(services, product_id) == []


async def test_eleventh_image_is_refused(
    api: Api, services: Services, seller: Account, product_id: str
) -> None:
    for _ in range(10):
        assert (await upload_payload(api.http, seller.token, product_id, PNG))["errors"] == []
    payload = await upload_payload(api.http, seller.token, product_id, PNG)
    assert [e["code"] for e in payload["errors"]] == ["INVALID_STATE"]
    assert len(await image_rows(services)) == 10
    assert len(local_files(services, product_id)) == 10


async def test_removed_and_deleted_products_lose_their_files_after_the_worker_runs(
    api: Api, services: Services, seller: Account, product_id: str
) -> None:
    first = await upload_payload(api.http, seller.token, product_id, PNG)
    await upload_payload(api.http, seller.token, product_id, PNG)
    image_id = first["product"]["images"][0]["id"]
    assert len(local_files(services, product_id)) == 2

    removed = (await api.gql(REMOVE, {"i": image_id}, seller.token))["removeProductImage"]
    assert removed["errors"] == []
    remaining = [i["id"] for i in removed["product"]["images"]]
    assert len(remaining) == 1
    assert image_id not in remaining
    # The row goes with the commit; the file only once the worker has run the owed job.
    assert len(await image_rows(services)) == 1
    assert len(local_files(services, product_id)) == 2
    await worker.run_due_jobs(services)
    assert len(local_files(services, product_id)) == 1

    deleted = await api.gql(
        "mutation($id: ID!) { deleteProduct(id: $id) { deletedId errors { code } } }",
        {"id": product_id},
        seller.token,
    )
    assert deleted["deleteProduct"]["errors"] == []
    assert await image_rows(services) == []
    await worker.run_due_jobs(services)
    assert local_files(services, product_id) == []
    assert {j["status"] for j in await delete_jobs(services)} == {"DONE"}


async def test_removing_an_image_of_another_sellers_product_is_not_found(
    api: Api, services: Services, seller: Account, product_id: str
) -> None:
    payload = await upload_payload(api.http, seller.token, product_id, PNG)
    image_id = payload["product"]["images"][0]["id"]
    rival = await api.register("SELLER")
    buyer = await api.register("USER")
    for token, code in (
        (rival.token, "NOT_FOUND"),
        (buyer.token, "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ):
        answer = (await api.gql(REMOVE, {"i": image_id}, token))["removeProductImage"]
        assert [e["code"] for e in answer["errors"]] == [code]
    assert len(await image_rows(services)) == 1
    assert await delete_jobs(services) == []


class _VanishingStore:
    """Stores the file, and meanwhile the seller deletes the product (a concurrent request)."""

    def __init__(self, inner: ImageStore, services: Services, product_id: str) -> None:
        self.kind = inner.kind
        self.inner = inner
        self.services = services
        self.product_id = product_id
        self.open_transactions_during_put: int | None = None

    async def put(self, *, folder: str, name: str, data: bytes, content_type: str) -> StoredImage:
        async with self.services.engine.begin() as conn:
            self.open_transactions_during_put = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%'"
                )
            )
            await conn.execute(
                text("UPDATE products SET deleted_at = now() WHERE id = :id"),
                {"id": self.product_id},
            )
        return await self.inner.put(folder=folder, name=name, data=data, content_type=content_type)

    def key_for(self, *, folder: str, name: str, content_type: str) -> str:
        return self.inner.key_for(folder=folder, name=name, content_type=content_type)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)


async def test_upload_holds_no_transaction_and_is_undone_when_the_product_vanished(
    services: Services, api: Api, seller: Account, product_id: str
) -> None:
    store = _VanishingStore(services.images, services, product_id)
    with pytest.raises(NotFound):
        await add_product_image(
            services.sessions,
            seller=await seller_row(services, seller),
            product_id=product_id,
            data=PNG,
            images=store,
        )
    assert store.open_transactions_during_put == 0
    assert await image_rows(services) == []
    assert local_files(services, product_id) == []


# --------------------------------------------------------------------------- Cloudinary (real SDK)


async def test_upload_goes_through_the_sdk_to_cloudinary(
    api: Api,
    services: Services,
    cloudinary_sim: CloudinarySimulator,
    cloud: CloudinaryImageStore,
    seller: Account,
    product_id: str,
) -> None:
    payload = await upload_payload(api.http, seller.token, product_id, PNG)
    assert payload["errors"] == []
    [row] = await image_rows(services)
    asset = cloudinary_sim.assets[row["key"]]
    assert asset.data == PNG
    assert row["key"].startswith(f"products/{product_id}/")
    assert row["store"] == "CLOUDINARY"
    host = cloudinary_sim.base_url.split("://", 1)[1]
    expected = (
        f"https://{host}/{cloudinary_sim.cloud_name}/image/upload/v{asset.version}/{row['key']}.png"
    )
    assert row["url"] == expected
    assert payload["product"]["images"] == [{"id": str(row["id"]), "url": expected}]
    [call] = [r for r in cloudinary_sim.requests if r.path.endswith("/upload")]
    assert len(call.fields["signature"]) == 40  # signed, SHA-1
    # The recorded URL is where the fake (standing in for the CDN) serves those very bytes.
    async with httpx.AsyncClient() as client:
        served = await client.get(expected.replace("https://", "http://", 1))
    assert served.content == PNG


async def test_wrong_api_secret_is_rejected_by_cloudinary_and_no_row_written(
    api: Api,
    services: Services,
    cloudinary_sim: CloudinarySimulator,
    seller: Account,
    product_id: str,
) -> None:
    wrong = CloudinaryImageStore(
        cloudinary_sim.cloudinary_url.replace(cloudinary_sim.api_secret, "not-the-secret"),
        api_url=cloudinary_sim.base_url,
        timeout=5,
    )
    with pytest.raises(ImageStoreUnavailable) as refused:
        await add_product_image(
            services.sessions,
            seller=await seller_row(services, seller),
            product_id=product_id,
            data=PNG,
            images=wrong,
        )
    sdk_error = refused.value.__cause__.__cause__ if refused.value.__cause__ else None
    assert isinstance(sdk_error, cloudinary.exceptions.AuthorizationRequired)  # HTTP 401
    assert [r.path for r in cloudinary_sim.requests] == [
        f"/v1_1/{cloudinary_sim.cloud_name}/image/upload"
    ]
    assert dict(cloudinary_sim.assets) == {}
    assert await image_rows(services) == []


async def test_removed_image_is_destroyed_at_cloudinary_only_by_the_worker(
    api: Api,
    services: Services,
    cloudinary_sim: CloudinarySimulator,
    cloud: CloudinaryImageStore,
    seller: Account,
    product_id: str,
) -> None:
    payload = await upload_payload(api.http, seller.token, product_id, PNG)
    image = payload["product"]["images"][0]
    [row] = await image_rows(services)
    removed = (await api.gql(REMOVE, {"i": image["id"]}, seller.token))["removeProductImage"]
    assert removed == {"product": {"id": product_id, "images": []}, "errors": []}
    assert await image_rows(services) == []
    assert row["key"] in cloudinary_sim.assets

    stats = await worker.run_due_jobs(services)
    assert stats.jobs_done == 1
    assert row["key"] not in cloudinary_sim.assets
    [job] = await delete_jobs(services)
    assert job["status"] == "DONE"


async def test_failed_destroy_is_retried_by_the_worker(
    api: Api,
    services: Services,
    cloudinary_sim: CloudinarySimulator,
    cloud: CloudinaryImageStore,
    seller: Account,
    product_id: str,
) -> None:
    payload = await upload_payload(api.http, seller.token, product_id, PNG)
    [row] = await image_rows(services)
    await api.gql(REMOVE, {"i": payload["product"]["images"][0]["id"]}, seller.token)
    cloudinary_sim.inject("destroy", "500")

    stats = await worker.run_due_jobs(services)
    assert stats.jobs_retried == 1
    [job] = await delete_jobs(services)
    assert (job["status"], job["attempts"]) == ("PENDING", 1)
    assert "GeneralError" in job["last_error"]
    assert row["key"] in cloudinary_sim.assets

    # Once the backoff has passed, the next pass finishes the deletion.
    async with services.engine.begin() as conn:
        await conn.execute(text("UPDATE jobs SET run_at = now() WHERE id = :id"), {"id": job["id"]})
    stats = await worker.run_due_jobs(services)
    assert stats.jobs_done == 1
    assert row["key"] not in cloudinary_sim.assets
    [job] = await delete_jobs(services)
    assert (job["status"], job["attempts"]) == ("DONE", 2)


async def test_timed_out_upload_is_refused_and_its_late_file_deleted_by_the_worker(
    api: Api,
    services: Services,
    cloudinary_sim: CloudinarySimulator,
    cloud: CloudinaryImageStore,
    seller: Account,
    product_id: str,
) -> None:
    cloud.timeout = 0.3
    cloudinary_sim.inject("upload", "slow", delay=1.0)  # stores the file, then answers late
    payload = await upload_payload(api.http, seller.token, product_id, PNG)
    assert [e["code"] for e in payload["errors"]] == ["IMAGE_STORE_UNAVAILABLE"]
    assert await image_rows(services) == []
    [late] = cloudinary_sim.assets
    assert late.startswith(f"products/{product_id}/")
    [job] = await delete_jobs(services)
    assert (job["status"], job["payload"]["key"]) == ("PENDING", late)

    async with services.engine.begin() as conn:
        await conn.execute(text("UPDATE jobs SET run_at = now() WHERE id = :id"), {"id": job["id"]})
    cloud.timeout = 5
    assert (await worker.run_due_jobs(services)).jobs_done == 1
    assert dict(cloudinary_sim.assets) == {}


# --------------------------------------------------------------------------- direct uploads


async def browser_upload(ticket: dict[str, Any], data: bytes = PNG) -> dict[str, Any]:
    """What the SPA does: post the signed fields and the file straight to Cloudinary."""
    fields = {
        "api_key": ticket["apiKey"],
        "timestamp": str(ticket["timestamp"]),
        "folder": ticket["folder"],
        "allowed_formats": ticket["allowedFormats"],
        "signature": ticket["signature"],
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            ticket["uploadUrl"], data=fields, files={"file": ("photo.png", data, "image/png")}
        )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def attach_input(answer: dict[str, Any], **override: Any) -> dict[str, Any]:
    fields = {
        "publicId": answer["public_id"],
        "version": answer["version"],
        "signature": answer["signature"],
        "format": answer["format"],
        "bytes": answer["bytes"],
    }
    return {**fields, **override}


async def ticket_for(api: Api, account: Account, product_id: str) -> dict[str, Any]:
    payload = (await api.gql(TICKET, {"p": product_id}, account.token))["createImageUploadTicket"]
    assert payload["errors"] == []
    ticket: dict[str, Any] = payload["ticket"]
    return ticket


async def test_direct_upload_is_attached_after_its_signature_checks_out(
    api: Api,
    services: Services,
    cloudinary_sim: CloudinarySimulator,
    cloud: CloudinaryImageStore,
    seller: Account,
    product_id: str,
) -> None:
    ticket = await ticket_for(api, seller, product_id)
    assert ticket["folder"] == f"products/{product_id}"
    assert ticket["uploadUrl"] == (
        f"{cloudinary_sim.base_url}/v1_1/{cloudinary_sim.cloud_name}/image/upload"
    )
    answer = await browser_upload(ticket)

    attached = await api.gql(ATTACH, {"p": product_id, "input": attach_input(answer)}, seller.token)
    payload = attached["attachUploadedImage"]
    assert payload["errors"] == []
    assert [i["url"] for i in payload["product"]["images"]] == [answer["secure_url"]]
    [row] = await image_rows(services)
    assert (row["key"], row["url"], row["size_bytes"]) == (
        answer["public_id"],
        answer["secure_url"],
        len(PNG),
    )
    # The SPA retrying the attach adds nothing.
    again = await api.gql(ATTACH, {"p": product_id, "input": attach_input(answer)}, seller.token)
    assert again["attachUploadedImage"]["errors"] == []
    assert len(await image_rows(services)) == 1


async def test_forged_or_misdirected_direct_upload_is_refused(
    api: Api,
    services: Services,
    cloudinary_sim: CloudinarySimulator,
    cloud: CloudinaryImageStore,
    seller: Account,
    product_id: str,
) -> None:
    answer = await browser_upload(await ticket_for(api, seller, product_id))
    forged = answer["signature"][:-1] + ("0" if answer["signature"][-1] != "0" else "1")
    other_product = await api.create_product(seller, name="Other")
    cases = [
        (product_id, attach_input(answer, signature=forged), "signature"),
        (product_id, attach_input(answer, version=answer["version"] + 1), "signature"),
        (product_id, attach_input(answer, publicId=f"products/{product_id}/x"), "signature"),
        # Genuinely signed, but uploaded under another product's ticket.
        (other_product, attach_input(answer), "publicId"),
    ]
    for target, given, field in cases:
        data = await api.gql(ATTACH, {"p": target, "input": given}, seller.token)
        errors = data["attachUploadedImage"]["errors"]
        assert [(e["code"], e["field"]) for e in errors] == [("INVALID_INPUT", field)], given
    assert await image_rows(services) == []


async def test_direct_upload_needs_cloudinary(
    api: Api, services: Services, seller: Account, product_id: str
) -> None:
    payload = (await api.gql(TICKET, {"p": product_id}, seller.token))["createImageUploadTicket"]
    assert payload["ticket"] is None
    [error] = payload["errors"]
    assert error["code"] == "INVALID_STATE"
    assert "uploadProductImage" in error["message"]


@pytest.fixture(autouse=True)
async def _no_leftover_files(services: Services) -> AsyncIterator[None]:
    """Local files live in the session's data dir; start every test without any."""
    yield
    store = services.images
    if isinstance(store, LocalImageStore) and store.root.is_dir():
        for path in sorted(store.root.rglob("*"), reverse=True):
            if path.is_file():
                path.unlink()
            else:
                path.rmdir()
