"""GraphQL fields for product images: multipart uploads, removal and direct browser uploads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

from joycart.db import transaction
from joycart.errors import NotFound
from joycart.integrations.images import MAX_IMAGE_BYTES
from joycart.models import Role
from joycart.resolvers import catalog, images
from joycart.schema.catalog import ProductPayload
from joycart.schema.errors import UserError, user_errors
from joycart.schema.types import JCInfo, Product, Viewer

F = TypeVar("F", bound=Callable[..., object])


def mutation(description: str) -> Callable[[F], F]:
    """`strawberry.mutation(description=...)`, typed: strawberry's own overload returns Any."""
    decorate: Callable[[F], F] = strawberry.mutation(description=description)
    return decorate


@strawberry.type(
    description="Signed fields for one browser upload straight to Cloudinary: post `file` with "
    "`api_key`, `timestamp`, `folder`, `allowed_formats` and `signature` to `uploadUrl` within "
    "an hour, then pass Cloudinary's answer to `attachUploadedImage`."
)
class ImageUploadTicket:
    upload_url: str
    cloud_name: str
    api_key: str
    timestamp: int
    folder: str
    allowed_formats: str
    signature: str


@strawberry.type
class ImageUploadTicketPayload:
    ticket: ImageUploadTicket | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="The fields of Cloudinary's answer to a direct upload, as received.")
class AttachUploadedImageInput:
    public_id: str
    version: int
    signature: str
    image_format: str = strawberry.field(name="format")
    size_bytes: int = strawberry.field(name="bytes")


async def _read(file: Upload) -> bytes:
    """At most one byte past the limit: enough to refuse a larger file without holding it."""
    upload: object = file
    if isinstance(upload, UploadFile):
        return await upload.read(MAX_IMAGE_BYTES + 1)
    if isinstance(upload, bytes):
        return upload
    raise TypeError(f"unexpected upload object {type(upload).__name__}")


async def _product(info: JCInfo, product_id: object) -> ProductPayload:
    async with info.context.read() as session:
        row = await catalog.get_product(session, product_id=str(product_id))
    if row is None:
        raise NotFound("No product with that ID among yours.", field="productId")
    return ProductPayload(product=Product.of(row, await info.context.viewer()))


@strawberry.type
class ImagesMutation:
    @mutation(
        "Add an image (JPEG, PNG or WebP, at most 10 MB) to one of your products, "
        "sent by the GraphQL multipart request spec with the Authorization header."
    )
    @user_errors(ProductPayload)
    async def upload_product_image(
        self, info: JCInfo, product_id: strawberry.ID, file: Upload
    ) -> ProductPayload:
        seller = await info.context.require_user(Role.SELLER)
        image = await images.add_product_image(
            info.context.services.sessions,
            seller=seller,
            product_id=product_id,
            data=await _read(file),
            images=info.context.services.images,
        )
        return await _product(info, image.product_id)

    @mutation("Remove an image; its stored file is deleted afterwards.")
    @user_errors(ProductPayload)
    async def remove_product_image(self, info: JCInfo, image_id: strawberry.ID) -> ProductPayload:
        seller = await info.context.require_user(Role.SELLER)
        async with transaction(info.context.services.sessions) as session:
            row = await images.remove_product_image(session, seller=seller, image_id=image_id)
        return ProductPayload(product=Product.of(row, Viewer.of(seller)))

    @mutation("Sign one direct browser upload to Cloudinary.")
    @user_errors(ImageUploadTicketPayload)
    async def create_image_upload_ticket(
        self, info: JCInfo, product_id: strawberry.ID
    ) -> ImageUploadTicketPayload:
        seller = await info.context.require_user(Role.SELLER)
        async with info.context.read() as session:
            ticket = await images.direct_upload_ticket(
                session,
                seller=seller,
                product_id=product_id,
                images=info.context.services.images,
            )
        return ImageUploadTicketPayload(
            ticket=ImageUploadTicket(
                upload_url=ticket.upload_url,
                cloud_name=ticket.cloud_name,
                api_key=ticket.api_key,
                timestamp=ticket.timestamp,
                folder=ticket.folder,
                allowed_formats=ticket.allowed_formats,
                signature=ticket.signature,
            )
        )

    @mutation("Attach a direct upload once Cloudinary's signature on its answer checks out.")
    @user_errors(ProductPayload)
    async def attach_uploaded_image(
        self, info: JCInfo, product_id: strawberry.ID, input: AttachUploadedImageInput
    ) -> ProductPayload:
        seller = await info.context.require_user(Role.SELLER)
        async with transaction(info.context.services.sessions) as session:
            image = await images.attach_uploaded_image(
                session,
                seller=seller,
                product_id=product_id,
                public_id=input.public_id,
                version=input.version,
                signature=input.signature,
                image_format=input.image_format,
                size_bytes=input.size_bytes,
                images=info.context.services.images,
            )
        return await _product(info, image.product_id)
