"""Find code that relies on state a pooled server connection does not keep between transactions.

Under PgBouncer's transaction pooling, consecutive transactions of one client connection may run
on different server connections: a session advisory lock, a plain `SET`, `LISTEN` or a temporary
table made in one transaction is gone (or, worse, still held by a stranger) in the next.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PATTERNS = {
    "session advisory lock": re.compile(r"pg_(try_)?advisory_(un)?lock(_shared)?\s*\("),
    "SET without LOCAL": re.compile(r"""text\(\s*f?["']\s*SET\s+(?!LOCAL\b)""", re.IGNORECASE),
    "LISTEN/NOTIFY listener": re.compile(r"""["']\s*LISTEN\s|add_listener\(""", re.IGNORECASE),
    "temporary table": re.compile(r"CREATE\s+(LOCAL\s+)?TEMP(ORARY)?\s+TABLE", re.IGNORECASE),
}


# Session state kept on purpose, on a connection that never goes through the pooler.
INTENDED = {
    # The subscriptions' one LISTEN connection per process is a direct asyncpg connection to
    # JOYCART_LISTEN_DATABASE_URL, which config requires (PostgreSQL itself) with the pooler set.
    ("joycart/realtime/listener.py", "LISTEN/NOTIFY listener"),
}


def session_state_in_code() -> list[str]:
    """`path:line: what` for every place in joycart/ and migrations/ that keeps session state
    on a pooled connection."""
    found = []
    for folder in ("joycart", "migrations"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for what, pattern in PATTERNS.items():
                    if pattern.search(line) and (relative, what) not in INTENDED:
                        found.append(f"{relative}:{number}: {what}")
    return found
