"""GraphQL over HTTP: the endpoint's view, persisted queries, media types and caching.

view.py         Strawberry's ASGI view with the hooks below wired in
negotiation.py  application/graphql-response+json or application/json, and refusals
persisted.py    Automatic Persisted Queries and trusted documents (table + LRU)
documents.py    trusted documents read from files and manifests (CLI, start-up)
caching.py      which answers are public, ETag and If-None-Match
"""

from joycart.http.view import GraphQLView

__all__ = ["GraphQLView"]
