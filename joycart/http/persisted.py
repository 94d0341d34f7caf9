"""Persisted queries: Apollo's Automatic Persisted Queries, and trusted documents.

A request names a document by `extensions.persistedQuery = {version: 1, sha256Hash}`:

- the hash alone: the stored document runs, or the answer is `PersistedQueryNotFound`
  (`PERSISTED_QUERY_NOT_FOUND`), after which Apollo's and urql's clients send the hash with the
  document;
- the hash with the document: the hash must be the SHA-256 of that exact text
  (`PERSISTED_QUERY_HASH_MISMATCH` otherwise, and nothing runs). In `apq` mode the document
  runs and, once it has parsed and validated, is stored for every API process.

Documents live in the `persisted_queries` table; each process keeps an LRU of the ones it has
seen, so a hit costs no SQL. Clients may store at most `persisted_queries_max` documents in all,
and one address `persisted_queries_per_minute` a minute; past either, or past 64 KB, the query
still runs but is not stored (the client will simply send it again).

In `trusted` mode only documents an operator registered ahead of time run (by hash, or by their
exact text); anything else is refused with `PERSISTED_QUERY_NOT_IN_LIST`. In `off` mode a
persisted-query request gets `PersistedQueryNotSupported`, and clients fall back to full text.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from joycart.db import Sessions, transaction
from joycart.errors import RateLimited
from joycart.http.negotiation import RequestRefused
from joycart.models import PersistedQuery
from joycart.resolvers import auth

log = logging.getLogger("joycart.http")

LRU_SIZE = 2000
MAX_CLIENT_DOCUMENT_CHARS = 64 * 1024
_HASH = re.compile(r"[0-9a-fA-F]{64}")
# Registrations take this transaction-scoped lock, so the cap counts exactly across processes.
_REGISTRATION_LOCK_ID = 0x4A43_5051  # "JCPQ"


class Mode(enum.StrEnum):
    APQ = "apq"
    TRUSTED = "trusted"
    OFF = "off"


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Resolved:
    query: str
    register: str | None = None  # the hash to store once the document has validated


def _not_found() -> RequestRefused:
    # Apollo's clients look for this exact message; 200 under application/json is what they
    # expect. Under graphql-response+json no operation ran, so it is a 400 like any request
    # error (both clients read the errors of a 4xx JSON answer and retry with the document).
    return RequestRefused(
        "PersistedQueryNotFound", code="PERSISTED_QUERY_NOT_FOUND", json_status=200
    )


def _not_in_list() -> RequestRefused:
    return RequestRefused(
        "Only documents registered ahead of time run on this server (trusted documents); "
        "register this one with `joycart persisted-queries add`.",
        code="PERSISTED_QUERY_NOT_IN_LIST",
        json_status=200,
    )


class DocumentCache:
    """Hash -> document, least recently used first out."""

    def __init__(self, size: int = LRU_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()

    def get(self, sha256: str) -> str | None:
        document = self._items.get(sha256)
        if document is not None:
            self._items.move_to_end(sha256)
        return document

    def put(self, sha256: str, document: str) -> None:
        self._items[sha256] = document
        self._items.move_to_end(sha256)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class PersistedQueries:
    def __init__(
        self,
        sessions: Sessions,
        *,
        mode: Mode,
        max_documents: int,
        per_minute: int | None,
        cache: DocumentCache | None = None,
    ) -> None:
        self.mode = mode
        self._sessions = sessions
        self._max_documents = max_documents
        self._per_minute = per_minute  # None: rate limits are off
        self._cache = cache or DocumentCache()

    async def resolve(self, extension: object, query: str | None) -> Resolved:
        """The document a persisted-query request runs; refuses what the mode does not allow."""
        if self.mode is Mode.OFF:
            raise RequestRefused(
                "PersistedQueryNotSupported",
                code="PERSISTED_QUERY_NOT_SUPPORTED",
                json_status=200,
            )
        sha256 = _requested_hash(extension)
        if query is None:
            found = await self._find(sha256)
            if found is None:
                raise _not_found()
            return Resolved(found)
        if sha256_hex(query) != sha256:
            raise RequestRefused(
                "The persisted query's sha256Hash is not the SHA-256 of the query sent with it.",
                code="PERSISTED_QUERY_HASH_MISMATCH",
            )
        if self.mode is Mode.TRUSTED:
            if await self._find(sha256) is None:
                raise _not_in_list()
            return Resolved(query)
        if self._cache.get(sha256) is not None:
            return Resolved(query)
        return Resolved(query, register=sha256)

    async def require_trusted(self, query: str) -> None:
        """Trusted mode: a document sent as text runs only if it was registered ahead of time."""
        if await self._find(sha256_hex(query)) is None:
            raise _not_in_list()

    async def remember(self, sha256: str, document: str, *, client: str) -> bool:
        """Store a client's document for every process, within the caps; True if it is stored."""
        if len(document) > MAX_CLIENT_DOCUMENT_CHARS:
            log.info("persisted query %s not stored: over %d characters", sha256, len(document))
            return False
        async with transaction(self._sessions) as session:
            await session.execute(select(func.pg_advisory_xact_lock(_REGISTRATION_LOCK_ID)))
            known = await session.scalar(
                select(PersistedQuery.sha256).where(PersistedQuery.sha256 == sha256)
            )
            if known is None:
                if self._per_minute is not None:
                    try:
                        await auth.hit_rate_limit(
                            session,
                            key=f"persisted-query:{client}"[:200],
                            limit=self._per_minute,
                            window=timedelta(minutes=1),
                        )
                    except RateLimited:
                        log.warning("persisted query %s not stored: %s over rate", sha256, client)
                        return False
                stored = await session.scalar(
                    select(func.count())
                    .select_from(PersistedQuery)
                    .where(PersistedQuery.trusted.is_(False))
                )
                if (stored or 0) >= self._max_documents:
                    log.warning("persisted query %s not stored: the store is full", sha256)
                    return False
                session.add(
                    PersistedQuery(
                        sha256=sha256,
                        document=document,
                        trusted=False,
                        source=f"client {client}"[:300],
                    )
                )
        self._cache.put(sha256, document)
        return True

    async def _find(self, sha256: str) -> str | None:
        found = self._cache.get(sha256)
        if found is not None:
            return found
        statement = select(PersistedQuery.document).where(PersistedQuery.sha256 == sha256)
        if self.mode is Mode.TRUSTED:
            statement = statement.where(PersistedQuery.trusted.is_(True))
        async with self._sessions() as session:
            found = await session.scalar(statement)
        if found is not None:
            self._cache.put(sha256, found)
        return found


def _requested_hash(extension: object) -> str:
    if not isinstance(extension, dict):
        raise RequestRefused("extensions.persistedQuery must be an object.", code="BAD_REQUEST")
    if extension.get("version") != 1:
        raise RequestRefused(
            "Unsupported persisted query version (only version 1 is).",
            code="PERSISTED_QUERY_NOT_SUPPORTED",
        )
    sha256 = extension.get("sha256Hash")
    if not isinstance(sha256, str) or not _HASH.fullmatch(sha256):
        raise RequestRefused(
            "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits.",
            code="BAD_REQUEST",
        )
    return sha256.lower()
