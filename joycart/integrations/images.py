"""Where product images live: a protocol, and the local store used when Cloudinary is not set."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ALLOWED_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MAX_IMAGE_BYTES = 10 * 1024 * 1024


class ImageStoreError(Exception):
    """The store failed or could not be reached; nothing is known to be stored."""


@dataclass(frozen=True)
class StoredImage:
    key: str
    url: str


def sniff_image_type(data: bytes) -> str | None:
    """The content type from the file's own bytes (never from its name or the client's claim)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class ImageStore(Protocol):
    kind: str

    async def put(
        self, *, folder: str, name: str, data: bytes, content_type: str
    ) -> StoredImage: ...

    def key_for(self, *, folder: str, name: str, content_type: str) -> str:
        """The key `put` stores under: a failed or timed-out put may still have stored it."""
        ...

    async def delete(self, key: str) -> None: ...


_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\.(jpg|png|webp)$")


class LocalImageStore:
    """Files under the data dir, served by the API at `url_prefix`."""

    kind = "LOCAL"

    def __init__(self, root: Path, *, url_prefix: str) -> None:
        self.root = root
        self.url_prefix = url_prefix

    def path_for(self, key: str) -> Path | None:
        if not _SAFE_KEY.match(key):
            return None
        return self.root / key

    def key_for(self, *, folder: str, name: str, content_type: str) -> str:
        return f"{folder}/{name}.{ALLOWED_TYPES[content_type]}"

    async def put(self, *, folder: str, name: str, data: bytes, content_type: str) -> StoredImage:
        key = self.key_for(folder=folder, name=name, content_type=content_type)
        path = self.path_for(key)
        if path is None:
            raise ImageStoreError(f"unsafe image key {key!r}")

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise ImageStoreError(str(exc)) from exc
        return StoredImage(key=key, url=f"{self.url_prefix}{key}")

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        if path is None:
            return
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            raise ImageStoreError(str(exc)) from exc
