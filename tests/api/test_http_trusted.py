"""Trusted documents: in production only documents registered ahead of time run."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
import pytest

from joycart.bootstrap import Services
from joycart.http.documents import (
    Document,
    DocumentError,
    add_trusted,
    check_documents,
    load_startup_documents,
    read_documents,
)
from joycart.http.persisted import sha256_hex
from tests.api.http_support import (
    AS_GRAPHQL_RESPONSE,
    app_client,
    get_params,
    persisted,
    stored_hashes,
    unique_products_query,
)

NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
EMPTY: dict[str, object] = {"data": {"products": {"edges": []}}}


def _codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


async def test_trusted_mode_refuses_documents_not_registered_ahead_of_time(
    http: httpx.AsyncClient, services: Services
) -> None:
    client_stored = unique_products_query()  # stored by a client while the server ran in apq
    registered = await http.post(
        "/graphql", json={"query": client_stored, "extensions": persisted(client_stored)}
    )
    assert registered.json() == EMPTY
    arbitrary = unique_products_query()
    async with app_client(services, persisted_queries="trusted") as trusted:
        as_text = await trusted.post("/graphql", json={"query": arbitrary})
        assert as_text.status_code == 200
        assert _codes(as_text) == [NOT_IN_LIST]
        assert "data" not in as_text.json()
        strict = await trusted.post(
            "/graphql", json={"query": arbitrary}, headers=AS_GRAPHQL_RESPONSE
        )
        assert strict.status_code == 400
        over_get = await trusted.get("/graphql", params=get_params(arbitrary))
        assert _codes(over_get) == [NOT_IN_LIST]
        registering = await trusted.post(
            "/graphql", json={"query": arbitrary, "extensions": persisted(arbitrary)}
        )
        assert _codes(registering) == [NOT_IN_LIST]
        by_hash = await trusted.post("/graphql", json={"extensions": persisted(arbitrary)})
        assert _codes(by_hash) == ["PERSISTED_QUERY_NOT_FOUND"]
        # A document a client stored in apq mode is not trusted.
        untrusted = await trusted.post("/graphql", json={"extensions": persisted(client_stored)})
        assert _codes(untrusted) == ["PERSISTED_QUERY_NOT_FOUND"]
        untrusted_text = await trusted.post("/graphql", json={"query": client_stored})
        assert _codes(untrusted_text) == [NOT_IN_LIST]
    assert await stored_hashes(services.engine) == {sha256_hex(client_stored)}


async def test_trusted_mode_serves_a_registered_document_by_hash_or_text(
    services: Services,
) -> None:
    query = unique_products_query()
    await add_trusted(services.sessions, [Document(query, "test")])
    async with app_client(services, persisted_queries="trusted") as trusted:
        by_hash = persisted(query)
        got = await trusted.get("/graphql", params=get_params(extensions=by_hash))
        assert got.json() == EMPTY
        assert (await trusted.post("/graphql", json={"extensions": by_hash})).json() == EMPTY
        assert (await trusted.post("/graphql", json={"query": query})).json() == EMPTY
        both = await trusted.post("/graphql", json={"query": query, "extensions": by_hash})
        assert both.json() == EMPTY


async def test_cli_registers_files_and_manifests_that_trusted_mode_then_serves(
    services: Services, database_url: str, tmp_path: Path
) -> None:
    catalogue = unique_products_query()
    from_manifest = unique_products_query()
    codegen = unique_products_query()
    documents = tmp_path / "documents"
    (documents / "nested").mkdir(parents=True)
    (documents / "catalogue.graphql").write_text(catalogue)
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256_hex(from_manifest), "body": from_manifest, "name": "C", "type": "query"}
        ],
    }
    (documents / "nested" / "persisted-query-manifest.json").write_text(json.dumps(manifest))
    (documents / "persisted-documents.json").write_text(json.dumps({sha256_hex(codegen): codegen}))
    env = {
        **os.environ,
        "JOYCART_DATABASE_URL": database_url,
        "JOYCART_DATA_DIR": str(tmp_path / "data"),
    }

    async def cli(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "joycart.cli",
            "persisted-queries",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, err = await cli("add", str(documents))
    assert code == 0, err
    assert "3 trusted documents registered" in out
    code, out, err = await cli("list")
    assert code == 0, err
    for query in (catalogue, from_manifest, codegen):
        assert f"{sha256_hex(query)}  trusted" in out
    (documents / "broken.graphql").write_text("{ products { nope } }")
    code, out, err = await cli("add", str(documents))
    assert code == 1
    assert "broken.graphql" in err
    assert "nothing was registered" in err

    async with app_client(services, persisted_queries="trusted") as trusted:
        for query in (catalogue, from_manifest, codegen):
            response = await trusted.post("/graphql", json={"extensions": persisted(query)})
            assert response.json() == EMPTY, query


async def test_startup_directory_registers_trusted_documents(
    services: Services, tmp_path: Path
) -> None:
    query = unique_products_query()
    (tmp_path / "catalogue.graphql").write_text(query)
    assert await load_startup_documents(services.sessions, tmp_path) == 1
    async with app_client(services, persisted_queries="trusted") as trusted:
        response = await trusted.post("/graphql", json={"extensions": persisted(query)})
    assert response.json() == EMPTY


def test_manifests_whose_hashes_do_not_match_are_refused(tmp_path: Path) -> None:
    query = "{ __typename }"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({sha256_hex(query + " "): query}))
    with pytest.raises(DocumentError, match="not the document's SHA-256"):
        read_documents(wrong)
    apollo = tmp_path / "apollo.json"
    apollo.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "operations": [{"id": "0" * 64, "body": query}],
            }
        )
    )
    with pytest.raises(DocumentError, match="not the document's SHA-256"):
        read_documents(apollo)
    with pytest.raises(DocumentError, match="no such file"):
        read_documents(tmp_path / "missing.graphql")


def test_documents_that_would_never_run_are_refused() -> None:
    check_documents([Document("query Ok { products { edges { cursor } } }", "ok")])
    for broken in ("{ products { nope } }", "{ products(", "mutation { nope }"):
        with pytest.raises(DocumentError, match="broken"):
            check_documents([Document(broken, "broken")])
