"""Trusted documents registered ahead of time: read from files, checked, stored.

`joycart persisted-queries add FILE|DIR` and the `JOYCART_PERSISTED_QUERIES_DIR` start-up load
both read:

- `.graphql` / `.gql` files: the whole file is one document, stored byte for byte (a client
  must send exactly that text, or its SHA-256);
- `.json` manifests: Apollo's `persisted-query-manifest.json`
  (`{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body", ...}]}`, from
  `@apollo/generate-persisted-query-manifest`) or a `{hash: document}` map (graphql-codegen's
  `persistedDocuments`); each hash must be the SHA-256 of its document.

Every document must parse and validate against the schema, or nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from graphql import GraphQLError, parse, validate
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from joycart.db import Sessions, transaction
from joycart.http.persisted import sha256_hex
from joycart.models import PersistedQuery
from joycart.schema import schema as joycart_schema

log = logging.getLogger("joycart.http")

DOCUMENT_SUFFIXES = (".graphql", ".gql")
MANIFEST_SUFFIX = ".json"


class DocumentError(Exception):
    """A file that cannot be registered; the message names it and says why."""


@dataclass(frozen=True)
class Document:
    text: str
    source: str

    @property
    def sha256(self) -> str:
        return sha256_hex(self.text)


@dataclass(frozen=True)
class StoredDocument:
    sha256: str
    trusted: bool
    source: str
    created_at: datetime
    document: str


def read_documents(path: Path) -> list[Document]:
    """The documents in a file, or in every document file and manifest under a directory."""
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix in (*DOCUMENT_SUFFIXES, MANIFEST_SUFFIX)
        )
    elif path.is_file():
        files = [path]
    else:
        raise DocumentError(f"{path}: no such file or directory")
    documents: list[Document] = []
    for file in files:
        if file.suffix == MANIFEST_SUFFIX:
            documents.extend(_manifest(file))
        else:
            documents.append(Document(file.read_text(encoding="utf-8"), f"file {file}"))
    return documents


def _manifest(file: Path) -> list[Document]:
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DocumentError(f"{file}: not JSON ({exc})") from exc
    pairs: list[tuple[object, object]]
    if isinstance(raw, dict) and raw.get("format") == "apollo-persisted-query-manifest":
        operations = raw.get("operations")
        if not isinstance(operations, list):
            raise DocumentError(f"{file}: an Apollo manifest needs an `operations` list")
        pairs = [
            (op.get("id"), op.get("body")) if isinstance(op, dict) else (None, None)
            for op in operations
        ]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise DocumentError(f"{file}: expected an Apollo manifest or a {{hash: document}} map")
    documents = []
    for index, (sha256, body) in enumerate(pairs):
        if not isinstance(sha256, str) or not isinstance(body, str):
            raise DocumentError(f"{file}: entry {index} needs a string hash and document")
        document = Document(body, f"manifest {file}")
        if document.sha256 != sha256.lower():
            raise DocumentError(f"{file}: entry {index}: {sha256} is not the document's SHA-256")
        documents.append(document)
    return documents


def check_documents(documents: Iterable[Document]) -> None:
    """Refuse any document that would never run: it must parse and validate."""
    schema = joycart_schema._schema
    for document in documents:
        try:
            errors = validate(schema, parse(document.text))
        except GraphQLError as exc:
            errors = [exc]
        if errors:
            raise DocumentError(f"{document.source}: {errors[0].message}")


async def add_trusted(sessions: Sessions, documents: Sequence[Document]) -> list[str]:
    """Register documents as trusted (a client-stored copy is promoted); returns their hashes."""
    check_documents(documents)
    async with transaction(sessions) as session:
        for document in documents:
            statement = insert(PersistedQuery).values(
                sha256=document.sha256,
                document=document.text,
                trusted=True,
                source=document.source[:300],
            )
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[PersistedQuery.sha256],
                    set_={"trusted": True, "source": statement.excluded.source},
                )
            )
    return [document.sha256 for document in documents]


async def list_documents(sessions: Sessions) -> list[StoredDocument]:
    async with sessions() as session:
        rows = await session.execute(
            select(PersistedQuery).order_by(PersistedQuery.created_at, PersistedQuery.sha256)
        )
        return [
            StoredDocument(r.sha256, r.trusted, r.source, r.created_at, r.document)
            for r in rows.scalars()
        ]


async def load_startup_documents(sessions: Sessions, directory: Path) -> int:
    """`JOYCART_PERSISTED_QUERIES_DIR`: register its documents as trusted before serving."""
    documents = await asyncio.to_thread(read_documents, directory)
    await add_trusted(sessions, documents)
    log.info("%d trusted documents registered from %s", len(documents), directory)
    return len(documents)


async def count_trusted(sessions: Sessions) -> int:
    async with sessions() as session:
        found = await session.scalar(
            select(func.count()).select_from(PersistedQuery).where(PersistedQuery.trusted)
        )
        return int(found or 0)
