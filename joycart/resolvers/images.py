"""Product images: a seller adds them to their own products, through the API or straight from the
browser to Cloudinary; removing one deletes the stored file after the commit (a retried job).

An upload never holds a transaction open: the ownership check commits first, the file goes to
the store, and a second short transaction records it, re-checking that the product is still
there (a file whose product vanished meanwhile is deleted again).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from joycart import validation
from joycart.db import Sessions
from joycart.errors import (
    Forbidden,
    ImageStoreUnavailable,
    InvalidInput,
    InvalidState,
    NotFound,
)
from joycart.integrations.images import (
    ALLOWED_TYPES,
    MAX_IMAGE_BYTES,
    ImageStore,
    ImageStoreError,
    StoredImage,
    sniff_image_type,
)
from joycart.models import ImageStore as StoreKind
from joycart.models import Product, ProductImage, Role, User
from joycart.resolvers import jobs
from joycart.resolvers.catalog import forget_image, own_product

log = logging.getLogger("joycart.images")

MAX_IMAGES_PER_PRODUCT = 10
# How long after a failed upload its file could still appear at the store.
LATE_UPLOAD_GRACE = timedelta(minutes=5)
CONTENT_TYPES = {ext: content_type for content_type, ext in ALLOWED_TYPES.items()}


@runtime_checkable
class DirectUploads(Protocol):
    """A store the browser can upload to directly (Cloudinary), with signed answers."""

    def sign_direct_upload(self, folder: str) -> dict[str, Any]: ...

    def verify_upload(self, public_id: str, version: int, signature: str) -> bool: ...

    def delivery_url_for(self, public_id: str, version: int, image_format: str) -> str: ...


@dataclass(frozen=True)
class UploadTicket:
    upload_url: str
    cloud_name: str
    api_key: str
    timestamp: int
    folder: str
    allowed_formats: str
    signature: str


def image_folder(product_id: uuid.UUID) -> str:
    """Where a product's files live, in any store; direct uploads are signed for it alone."""
    return f"products/{product_id}"


async def _check_room(session: AsyncSession, product: Product) -> None:
    count = await session.scalar(
        select(func.count()).select_from(ProductImage).where(ProductImage.product_id == product.id)
    )
    if (count or 0) >= MAX_IMAGES_PER_PRODUCT:
        raise InvalidState(
            f"A product has at most {MAX_IMAGES_PER_PRODUCT} images; remove one first.",
            field="productId",
        )


def _check_file(data: bytes) -> str:
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput(
            f"An image may be at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB.", field="file"
        )
    content_type = sniff_image_type(data)
    if content_type is None:
        raise InvalidInput("The file must be a JPEG, PNG or WebP image.", field="file")
    return content_type


async def _owe_deletion(sessions: Sessions, images: ImageStore, key: str, delay: timedelta) -> None:
    async with sessions() as session, session.begin():
        await jobs.enqueue(
            session,
            jobs.DELETE_IMAGE,
            {"store": images.kind, "key": key},
            dedupe_key=f"image:{key}",
            delay=delay,
        )


async def _discard(sessions: Sessions, images: ImageStore, stored: StoredImage) -> None:
    """Delete a file nothing refers to; when the store fails, owe the deletion to the worker."""
    try:
        await images.delete(stored.key)
    except ImageStoreError:
        try:
            await _owe_deletion(sessions, images, stored.key, timedelta(0))
        except Exception:  # the caller's own error matters more; this file is only an orphan
            log.exception("could not owe the deletion of orphaned image %s", stored.key)


async def add_product_image(
    sessions: Sessions, *, seller: User, product_id: str, data: bytes, images: ImageStore
) -> ProductImage:
    """Store an image (type read from its bytes, at most 10 MB) for one of the seller's products."""
    async with sessions() as session, session.begin():
        product = await own_product(session, seller=seller, product_id=product_id)
        await _check_room(session, product)
    content_type = _check_file(data)
    folder, name = image_folder(product.id), uuid.uuid4().hex
    try:
        stored = await images.put(folder=folder, name=name, data=data, content_type=content_type)
    except ImageStoreError as exc:
        # A timed-out upload may still land: owe the deletion of whatever it stored, once the
        # upload has surely finished (deleting a file that never came is a no-op).
        key = images.key_for(folder=folder, name=name, content_type=content_type)
        await _owe_deletion(sessions, images, key, LATE_UPLOAD_GRACE)
        raise ImageStoreUnavailable(
            "The image store could not take the file; nothing was attached. Try again."
        ) from exc
    try:
        async with sessions() as session, session.begin():
            product = await own_product(
                session, seller=seller, product_id=str(product.id), lock=True
            )
            await _check_room(session, product)
            image = ProductImage(
                product_id=product.id,
                store=StoreKind(images.kind),
                key=stored.key,
                url=stored.url,
                content_type=content_type,
                size_bytes=len(data),
            )
            session.add(image)
            await session.flush()
            await session.refresh(image)
    except BaseException:
        await _discard(sessions, images, stored)
        raise
    return image


async def remove_product_image(session: AsyncSession, *, seller: User, image_id: str) -> Product:
    """Remove an image of the seller's own product; its file is deleted once this commits."""
    if seller.role is not Role.SELLER:
        raise Forbidden("Only a seller account can manage products.")
    iid = validation.parse_id(image_id, field="imageId", what="image")
    found = (
        await session.execute(
            select(ProductImage, Product)
            .join(Product, Product.id == ProductImage.product_id)
            .where(
                ProductImage.id == iid,
                Product.seller_id == seller.id,
                Product.deleted_at.is_(None),
            )
            .with_for_update()
        )
    ).first()
    if found is None:
        raise NotFound("No image with that ID among your products.", field="imageId")
    image, product = found
    await forget_image(session, image)
    await session.flush()
    return product


def _direct(images: ImageStore) -> DirectUploads:
    if not isinstance(images, DirectUploads):
        raise InvalidState(
            "Direct uploads need Cloudinary, which this server is not configured with; "
            "send the file with uploadProductImage instead."
        )
    return images


async def direct_upload_ticket(
    session: AsyncSession, *, seller: User, product_id: str, images: ImageStore
) -> UploadTicket:
    """Signed fields for the browser to post one image of the seller's product to Cloudinary."""
    product = await own_product(session, seller=seller, product_id=product_id)
    store = _direct(images)
    await _check_room(session, product)
    signed = store.sign_direct_upload(image_folder(product.id))
    return UploadTicket(
        upload_url=str(signed["upload_url"]),
        cloud_name=str(signed["cloud_name"]),
        api_key=str(signed["api_key"]),
        timestamp=int(signed["timestamp"]),
        folder=str(signed["folder"]),
        allowed_formats=str(signed["allowed_formats"]),
        signature=str(signed["signature"]),
    )


async def attach_uploaded_image(
    session: AsyncSession,
    *,
    seller: User,
    product_id: str,
    public_id: str,
    version: int,
    signature: str,
    image_format: str,
    size_bytes: int,
    images: ImageStore,
) -> ProductImage:
    """Attach what the browser uploaded, once Cloudinary's signature on its answer checks out."""
    product = await own_product(session, seller=seller, product_id=product_id, lock=True)
    store = _direct(images)
    if not store.verify_upload(public_id, version, signature):
        raise InvalidInput("That is not an upload Cloudinary confirmed.", field="signature")
    folder = image_folder(product.id)
    name = public_id.removeprefix(f"{folder}/")
    if name == public_id or not name or "/" in name:
        raise InvalidInput("The upload was not made for this product.", field="publicId")
    content_type = CONTENT_TYPES.get(image_format)
    if content_type is None:
        raise InvalidInput("The image must be a JPEG, PNG or WebP.", field="format")
    if not 0 < size_bytes <= MAX_IMAGE_BYTES:
        raise InvalidInput(
            f"An image may be at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB.", field="bytes"
        )
    existing = await session.scalar(
        select(ProductImage).where(
            ProductImage.product_id == product.id, ProductImage.key == public_id
        )
    )
    if existing is not None:  # the SPA retried: attaching is idempotent
        return existing
    await _check_room(session, product)
    image = ProductImage(
        product_id=product.id,
        store=StoreKind(images.kind),
        key=public_id,
        url=store.delivery_url_for(public_id, version, image_format),
        content_type=content_type,
        size_bytes=size_bytes,
    )
    session.add(image)
    await session.flush()
    await session.refresh(image)
    return image
