"""GraphQL fields for the catalog: browsing for anyone, product management for sellers."""

from __future__ import annotations

import strawberry

from joycart.models import Role
from joycart.resolvers import catalog
from joycart.schema.errors import UserError, user_errors
from joycart.schema.pagination import (
    Connection,
    connection,
    decode_cursor,
    page_size,
)
from joycart.schema.types import ANONYMOUS, JCInfo, Product, Viewer, selected_subfields


@strawberry.input
class CreateProductInput:
    name: str
    description: str = ""
    price: int = strawberry.field(description="Price per unit in paise (₹1 = 100).")
    stock: int


@strawberry.input
class UpdateProductInput:
    name: str | None = None
    description: str | None = None
    price: int | None = None


@strawberry.type
class ProductPayload:
    product: Product | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeleteProductPayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


ProductConnection = Connection[Product]


@strawberry.type
class CatalogQuery:
    @strawberry.field(description="Live products, newest first. `search` matches the name.")
    async def products(
        self,
        info: JCInfo,
        first: int | None = 20,
        after: str | None = None,
        search: str | None = None,
        seller_id: strawberry.ID | None = None,
    ) -> Connection[Product]:
        size = page_size(first)
        wanted = selected_subfields(info, ("products", "edges", "node"))
        # Only a seller's own email depends on who asks: anonymous pages never look anyone up.
        viewer = await info.context.public_viewer() if "seller" in wanted else ANONYMOUS
        async with info.context.read() as session:
            page = await catalog.list_products(
                session,
                first=size,
                after=decode_cursor(after),
                search=search,
                seller_id=seller_id,
            )
            nodes = await Product.many(
                info,
                session,
                page.rows,
                viewer,
                seller="seller" in wanted,
                images="images" in wanted,
            )
        return connection(page.rows, nodes, page.has_next)

    @strawberry.field
    async def product(self, info: JCInfo, id: strawberry.ID) -> Product | None:
        wanted = selected_subfields(info, ("product",))
        viewer = await info.context.public_viewer() if "seller" in wanted else ANONYMOUS
        async with info.context.read() as session:
            row = await catalog.get_product(session, product_id=id)
        return Product.of(row, viewer) if row is not None else None


@strawberry.type
class CatalogMutation:
    @strawberry.mutation
    @user_errors(ProductPayload)
    async def create_product(self, info: JCInfo, input: CreateProductInput) -> ProductPayload:
        seller = await info.context.require_user(Role.SELLER)
        async with info.context.transaction() as session:
            row = await catalog.create_product(
                session,
                seller=seller,
                name=input.name,
                description=input.description,
                price=input.price,
                stock=input.stock,
            )
        return ProductPayload(product=Product.of(row, Viewer.of(seller)))

    @strawberry.mutation
    @user_errors(ProductPayload)
    async def update_product(
        self, info: JCInfo, id: strawberry.ID, input: UpdateProductInput
    ) -> ProductPayload:
        seller = await info.context.require_user(Role.SELLER)
        async with info.context.transaction() as session:
            row = await catalog.update_product(
                session,
                seller=seller,
                product_id=id,
                name=input.name,
                description=input.description,
                price=input.price,
            )
        return ProductPayload(product=Product.of(row, Viewer.of(seller)))

    @strawberry.mutation
    @user_errors(DeleteProductPayload)
    async def delete_product(self, info: JCInfo, id: strawberry.ID) -> DeleteProductPayload:
        seller = await info.context.require_user(Role.SELLER)
        async with info.context.transaction() as session:
            deleted = await catalog.delete_product(session, seller=seller, product_id=id)
        return DeleteProductPayload(deleted_id=strawberry.ID(str(deleted)))

    @strawberry.mutation(description="Change stock by `delta` (relative); never below zero.")
    @user_errors(ProductPayload)
    async def adjust_stock(
        self, info: JCInfo, product_id: strawberry.ID, delta: int
    ) -> ProductPayload:
        seller = await info.context.require_user(Role.SELLER)
        async with info.context.transaction() as session:
            row = await catalog.adjust_stock(
                session, seller=seller, product_id=product_id, delta=delta
            )
        return ProductPayload(product=Product.of(row, Viewer.of(seller)))
