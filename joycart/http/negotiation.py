"""Which media type an answer uses, and how a request refused before it runs is answered.

The GraphQL-over-HTTP spec gives a client two media types:

- `application/graphql-response+json`, when the client accepts it: a request that cannot run
  (unparsable JSON or document, invalid parameters, a validation error, variables that do not
  coerce) gets a 4xx status and an answer with no `data` key; an execution result gets 200.
- `application/json`, for every other client (no `Accept`, `*/*`, or `application/json`
  preferred): the long-standing behaviour, 200 with `"data": null` for documents that do not
  parse or validate, and 400 only when the HTTP request itself is malformed.
"""

from __future__ import annotations

import functools

import orjson
from starlette.responses import Response

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
CONTENT_TYPES = {GRAPHQL_RESPONSE: f"{GRAPHQL_RESPONSE}; charset=utf-8", JSON: JSON}


@functools.lru_cache(maxsize=256)
def negotiate(accept: str | None) -> str:
    """The media type for an `Accept` header: graphql-response+json when the client names it
    at least as willingly as application/json; application/json otherwise (wildcards too)."""
    if not accept or GRAPHQL_RESPONSE not in accept:
        return JSON
    wanted: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        wanted[media] = max(wanted.get(media, 0.0), quality)
    graphql_response = wanted.get(GRAPHQL_RESPONSE, 0.0)
    json = max(wanted.get(JSON, 0.0), wanted.get("application/*", 0.0), wanted.get("*/*", 0.0))
    return GRAPHQL_RESPONSE if graphql_response > 0 and graphql_response >= json else JSON


class RequestRefused(Exception):
    """A request answered without running its operation.

    `status` is the answer under application/graphql-response+json; `json_status` the one under
    application/json, where Apollo's clients expect protocol errors such as
    `PersistedQueryNotFound` with 200.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int = 400,
        json_status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.json_status = status if json_status is None else json_status
        self.headers = headers or {}


def refusal_response(refused: RequestRefused, media: str, headers: dict[str, str]) -> Response:
    """The GraphQL-shaped answer (`errors`, never `data`) to a refused request."""
    body = orjson.dumps(
        {"errors": [{"message": refused.message, "extensions": {"code": refused.code}}]}
    )
    status = refused.status if media == GRAPHQL_RESPONSE else refused.json_status
    return Response(
        body,
        status_code=status,
        headers={**headers, **refused.headers},
        media_type=CONTENT_TYPES[media],
    )
