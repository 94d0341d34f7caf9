"""Cloudinary's wire format as the simulator checks it: signatures, image bytes, records."""

from __future__ import annotations

import hashlib
import string
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.responses import JSONResponse

UNSIGNED_FIELDS = frozenset({"file", "api_key", "signature", "resource_type", "cloud_name"})
RESOURCE_TYPES = frozenset({"image", "auto", "raw", "video"})
FAULTS = frozenset({"500", "html502", "slow"})
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
ALNUM = string.ascii_lowercase + string.digits


def string_to_sign(fields: Mapping[str, str]) -> str:
    """Cloudinary's (signature version 2) string to sign, before the secret is appended."""
    pairs = (
        f"{k}={v}".replace("&", "%26") for k, v in fields.items() if v and k not in UNSIGNED_FIELDS
    )
    return "&".join(sorted(pairs))


def hexdigest(algorithm: str, text: str) -> str:
    # SHA-1 is what Cloudinary's protocol mandates; the name is a parameter on purpose.
    return hashlib.new(algorithm, text.encode()).hexdigest()


def sign(fields: Mapping[str, str], api_secret: str, algorithm: str = "sha1") -> str:
    """Hex signature of ``fields`` as computed by ``cloudinary.utils.api_sign_request``."""
    return hexdigest(algorithm, string_to_sign(fields) + api_secret)


def detect_image(data: bytes) -> str | None:
    """Return ``jpg``/``png``/``webp`` when ``data`` starts with that format's signature."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def dimensions(data: bytes, fmt: str) -> tuple[int, int]:
    if fmt == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 1, 1


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    fields: dict[str, str]
    file_size: int | None


@dataclass(frozen=True)
class StoredAsset:
    public_id: str
    asset_id: str
    version: int
    version_id: str
    format: str
    resource_type: str
    data: bytes
    width: int
    height: int
    tags: tuple[str, ...]
    created_at: str
    original_filename: str
    asset_folder: str


@dataclass
class Fault:
    path_suffix: str
    fault: str
    remaining: int
    delay: float


@dataclass
class State:
    assets: dict[str, StoredAsset] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)
