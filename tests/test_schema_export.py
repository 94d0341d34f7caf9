"""schema.graphql, what SPA developers read and generate clients from, matches the code."""

from __future__ import annotations

from pathlib import Path

from strawberry.printer import print_schema

from joycart.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"
REGENERATE = ".venv/bin/strawberry export-schema joycart.schema:schema --output schema.graphql"


def test_exported_schema_matches_the_code() -> None:
    # Exactly what `strawberry export-schema --output` writes: the printed schema and a newline.
    expected = print_schema(schema) + "\n"
    assert schema.as_str() == print_schema(schema)
    exported = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    assert exported == expected, (
        f"schema.graphql is out of date with joycart.schema; regenerate it with `{REGENERATE}`"
    )
