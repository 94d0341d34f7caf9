#!/usr/bin/env python3
"""The two commands: `python3 dev.py serve` and `python3 dev.py test`.

Each makes (or refreshes) a virtualenv in .venv with the project and its development tools, then
runs the server, or the whole test suite (lint, types, tests). Needs only Python 3.11+.
Extra arguments pass through: `python3 dev.py serve --port 9000`, `python3 dev.py test -k refund`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".joycart-installed"


def _ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"JoyCart needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing JoyCart and its tools into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def _run(*cmd: str) -> int:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("serve", "test"):
        print(__doc__)
        return 2
    _ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "serve":
        os.execv(str(BIN / "joycart"), [str(BIN / "joycart"), "serve", *rest])
    for step in (
        (str(BIN / "ruff"), "check", "."),
        (str(BIN / "ruff"), "format", "--check", "."),
        (str(BIN / "mypy"),),
    ):
        if rest:  # a focused run (`test -k ...`) skips lint and types
            break
        if _run(*step) != 0:
            return 1
    return _run(str(BIN / "python"), "-m", "pytest", *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
