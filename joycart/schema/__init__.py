"""The GraphQL schema: the root types merged from one module per domain, plus the hardening."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from joycart.observability.graphql import OperationMetrics
from joycart.schema.addresses import AddressesMutation, AddressesQuery
from joycart.schema.admission import AdmittingSchema
from joycart.schema.auth import AuthMutation, AuthQuery
from joycart.schema.catalog import CatalogMutation, CatalogQuery
from joycart.schema.cost import QueryCostRule
from joycart.schema.errors import MaskInternalErrors
from joycart.schema.executor import LeanExecutor
from joycart.schema.fulfilment import FulfilmentMutation
from joycart.schema.images import ImagesMutation
from joycart.schema.orders import OrdersMutation, OrdersQuery
from joycart.schema.shopping import ShoppingMutation, ShoppingQuery
from joycart.schema.subscriptions import Subscription, SubscriptionsOverSocketsOnly

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 2000

Query = merge_types("Query", (AuthQuery, CatalogQuery, ShoppingQuery, OrdersQuery, AddressesQuery))
Mutation = merge_types(
    "Mutation",
    (
        AuthMutation,
        CatalogMutation,
        ImagesMutation,
        ShoppingMutation,
        OrdersMutation,
        AddressesMutation,
        FulfilmentMutation,
    ),
)

# Built once: per-request limiter extensions would defeat the validation cache
# (strawberry issue #4635).
_RULES: list[type[ASTValidationRule]] = [
    depth_rule(MAX_DEPTH, None, None),
    max_aliases_rule(MAX_ALIASES),
    QueryCostRule,  # priced from the text alone, so its verdict is cached with validation
]


def _extensions(production: bool) -> list[type[SchemaExtension] | Callable[[], SchemaExtension]]:
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        OperationMetrics,
        lambda: AddValidationRules(list(_RULES)),
        lambda: MaxTokensLimiter(MAX_TOKENS),
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        MaskInternalErrors,
        SubscriptionsOverSocketsOnly,
    ]
    if production:
        extensions.append(DisableIntrospection)
    return extensions


def build_schema(*, production: bool = False) -> strawberry.Schema:
    return AdmittingSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=_extensions(production),
        execution_context_class=LeanExecutor,
        config=StrawberryConfig(disable_field_suggestions=production),
    )


# What `strawberry export-schema joycart.schema:schema` prints into schema.graphql.
schema = build_schema()
