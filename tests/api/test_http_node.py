"""Stock JavaScript clients against the live server, from npm (tests/node/, pinned by its lock):
the GraphQL-over-HTTP spec's audit suite, urql with its defaults, and Apollo Client.

`.ci/run` installs Node when it is missing and the packages with `npm ci --prefix tests/node`.
Without them these tests are skipped with a `missing tool:` reason, which the terminal summary
repeats (tests/conftest.py); they never pass silently.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from joycart.bootstrap import Services
from joycart.http.documents import add_trusted, read_documents
from joycart.http.persisted import sha256_hex
from tests.api.http_support import serve_app, trusted_app
from tests.conftest import MISSING_TOOL
from tests.helpers import Api

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
PACKAGES = (
    "graphql-http",
    "@urql/core",
    "@urql/exchange-persisted",
    "@apollo/client",
    "@apollo/persisted-query-lists",
)
AUDITS = 61  # graphql-http 1.23.1, pinned in tests/node/package-lock.json
SCRIPT_TIMEOUT = 300  # a hung script fails the test instead of hanging the suite


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            f"{MISSING_TOOL} node is not on PATH, so the GraphQL-over-HTTP audit and the urql and "
            "Apollo client tests did not run (.ci/run installs it: apt-get install -y nodejs npm)"
        )
    missing = [p for p in PACKAGES if not (NODE_DIR / "node_modules" / p / "package.json").exists()]
    if missing:
        pytest.skip(
            f"{MISSING_TOOL} npm packages {', '.join(missing)} are not installed, so the "
            "GraphQL-over-HTTP audit and client tests did not run "
            "(run `npm ci --prefix tests/node`, as .ci/run does)"
        )
    return node


async def _run(script: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        _node(),
        str(NODE_DIR / script),
        *args,
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), SCRIPT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_graphql_over_http_audit_passes_with_no_warnings_or_errors(server: str) -> None:
    code, out, err = await _run("audit.mjs", f"{server}/graphql")
    results: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])
    not_ok = [
        f"{r['status']} {r['id']} {r['name']}: {r.get('reason')} (HTTP {r.get('responseStatus')})"
        for r in results
        if r["status"] != "ok"
    ]
    print("\n".join(not_ok) or f"all {len(results)} audits ok")
    assert len(results) == AUDITS, err
    assert not_ok == []
    assert [r for r in results if r["status"] in ("warn", "error")] == []
    assert code == 0, err


def _names(data: dict[str, Any]) -> list[str]:
    return [edge["node"]["name"] for edge in data["products"]["edges"]]


async def _client_run(
    script: str, server: str, api: Api, services: Services
) -> tuple[dict[str, Any], str]:
    _node()  # skips, with its reason, before any set-up
    seller = await api.register("SELLER")
    await api.create_product(seller, name="Kangra")
    email = f"{script.split('.')[0]}-{uuid.uuid4().hex[:8]}@example.com"
    code, out, err = await _run(script, f"{server}/graphql", email, uuid.uuid4().hex[:10])
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    assert report["query"]["error"] is None, report
    assert _names(report["query"]["data"]) == ["Kangra"]
    assert report["mutation"]["error"] is None, report
    assert report["mutation"]["data"]["register"]["errors"] == []
    async with services.engine.connect() as conn:
        user = await conn.scalar(text("SELECT id::text FROM users WHERE email = :e"), {"e": email})
        stored = await conn.scalar(text("SELECT count(*) FROM persisted_queries"))
    assert report["mutation"]["data"]["register"]["user"]["id"] == user
    assert report["me"]["data"]["me"]["id"] == user, report["me"]  # the token was sent
    assert stored == 1  # the persisted client's query, registered once
    for run in ("first", "again"):
        assert report["persisted"][run]["error"] is None, report
        assert _names(report["persisted"][run]["data"]) == ["Kangra"]
    return report, err


def _calls(requests: list[dict[str, Any]]) -> list[tuple[str, bool, bool, int]]:
    return [(r["method"], r["hasQuery"], r["persisted"], r["status"]) for r in requests]


async def test_urql_with_its_default_options_runs_a_query_over_get_and_a_mutation(
    server: str, api: Api, services: Services
) -> None:
    report, _ = await _client_run("urql.mjs", server, api, services)
    # (method, document sent, hash sent, status)
    assert _calls(report["queryRequests"]) == [("GET", True, False, 200)]
    assert _calls(report["mutationRequests"]) == [("POST", True, False, 200)]
    assert _calls(report["meRequests"]) == [("GET", True, False, 200)]
    # urql accepts graphql-response+json: the miss is a 400 it reads, then it registers.
    assert _calls(report["persisted"]["firstRequests"]) == [
        ("GET", False, True, 400),
        ("GET", True, True, 200),
    ]
    assert _calls(report["persisted"]["againRequests"]) == [("GET", False, True, 200)]


async def test_apollo_client_with_persisted_queries_as_the_readme_sets_it_up(
    server: str, api: Api, services: Services
) -> None:
    report, _ = await _client_run("apollo.mjs", server, api, services)
    assert _calls(report["queryRequests"]) == [("POST", True, False, 200)]
    assert _calls(report["mutationRequests"]) == [("POST", True, False, 200)]
    assert _calls(report["meRequests"]) == [("POST", True, False, 200)]
    assert _calls(report["persisted"]["firstRequests"]) == [
        ("GET", False, True, 400),
        ("POST", True, True, 200),
    ]
    assert _calls(report["persisted"]["againRequests"]) == [("GET", False, True, 200)]


async def test_apollo_client_in_trusted_documents_mode_sends_only_manifest_ids(
    api: Api, services: Services, tmp_path: Path
) -> None:
    _node()
    seller = await api.register("SELLER")
    await api.create_product(seller, name="Kangra")
    tag = uuid.uuid4().hex[:10]
    # What @apollo/generate-persisted-query-manifest writes: Apollo's document, __typename added.
    body = (
        f"query Catalogue_{tag} {{ products(first: 5) {{ __typename edges {{ __typename "
        "node { __typename id name } } } }"
    )
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256_hex(body), "name": f"Catalogue_{tag}", "type": "query", "body": body}
        ],
    }
    path = tmp_path / "persisted-query-manifest.json"
    path.write_text(json.dumps(manifest))
    await add_trusted(services.sessions, read_documents(path))
    async with serve_app(trusted_app(services)) as url:
        code, out, err = await _run("apollo-trusted.mjs", f"{url}/graphql", str(path), tag)
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    assert report["listed"]["error"] is None, report
    assert _names(report["listed"]["data"]) == ["Kangra"]
    assert [(r["method"], r["hasQuery"], r["status"]) for r in report["listedRequests"]] == [
        ("GET", False, 200)
    ]
    assert "not found in manifest" in report["unlisted"]["error"]
    assert report["unlistedRequests"] == []  # the client refuses before sending anything
    assert report["asText"]["status"] == 200
    errors = report["asText"]["body"]["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["PERSISTED_QUERY_NOT_IN_LIST"]
