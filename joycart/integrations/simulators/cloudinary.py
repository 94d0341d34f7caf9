"""In-process fake of Cloudinary's Upload API for tests and local development.

``CloudinarySimulator`` serves a Starlette app on 127.0.0.1 that the real ``cloudinary`` SDK
(1.46.x) can talk to when given ``upload_prefix=sim.base_url``.  It implements signed (and
preset-based unsigned) ``upload`` and ``destroy`` exactly as Cloudinary checks them: cloud name,
API key, request signature (SHA-1 or SHA-256, detected by length), one-hour timestamp window, size
limit and image magic bytes.  Uploaded bytes are kept in memory and served back from the ``url``
in the upload response.  Every request is recorded, and faults (HTTP 500, HTML 502, slow answers)
can be injected to exercise the caller's error handling.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import socket
import string
import struct
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

UNSIGNED_FIELDS = frozenset({"file", "api_key", "signature", "resource_type", "cloud_name"})
RESOURCE_TYPES = frozenset({"image", "auto", "raw", "video"})
FAULTS = frozenset({"500", "html502", "slow"})
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_ALNUM = string.ascii_lowercase + string.digits


def string_to_sign(fields: Mapping[str, str]) -> str:
    """Cloudinary's (signature version 2) string to sign, before the secret is appended."""
    pairs = (
        f"{k}={v}".replace("&", "%26") for k, v in fields.items() if v and k not in UNSIGNED_FIELDS
    )
    return "&".join(sorted(pairs))


def _hexdigest(algorithm: str, text: str) -> str:
    # SHA-1 is what Cloudinary's protocol mandates; the name is a parameter on purpose.
    return hashlib.new(algorithm, text.encode()).hexdigest()


def sign(fields: Mapping[str, str], api_secret: str, algorithm: str = "sha1") -> str:
    """Hex signature of ``fields`` as computed by ``cloudinary.utils.api_sign_request``."""
    return _hexdigest(algorithm, string_to_sign(fields) + api_secret)


def detect_image(data: bytes) -> str | None:
    """Return ``jpg``/``png``/``webp`` when ``data`` starts with that format's signature."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _dimensions(data: bytes, fmt: str) -> tuple[int, int]:
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
class _Fault:
    path_suffix: str
    fault: str
    remaining: int
    delay: float


@dataclass
class _State:
    assets: dict[str, StoredAsset] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)


class CloudinarySimulator:
    """Fake Cloudinary Upload API; see the module docstring."""

    def __init__(
        self,
        cloud_name: str = "joycart-sim",
        api_key: str = "123456789012345",
        api_secret: str = "simulator-secret",  # noqa: S107 - a fake's well-known test secret
        max_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.cloud_name = cloud_name
        self.api_key = api_key
        self.api_secret = api_secret
        self.max_bytes = max_bytes
        self.unsigned_presets: set[str] = set()
        self._lock = threading.Lock()
        self._state = _State()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._base_url: str | None = None
        self.app = Starlette(
            routes=[
                Route("/v1_1/{cloud}/{resource_type}/upload", self._api, methods=["POST"]),
                Route("/v1_1/{cloud}/{resource_type}/destroy", self._api, methods=["POST"]),
                Route("/{cloud}/{resource_type}/upload/v{version:int}/{rest:path}", self._deliver),
            ]
        )

    # ----------------------------------------------------------------- lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._server is not None:
            raise RuntimeError("simulator already started")
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only then (else +40 ms per request).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=3
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name=f"cloudinary-sim-{bound_port}",
            daemon=True,
        )
        self._server, self._thread, self._sock = server, thread, sock
        self._base_url = f"http://{host}:{bound_port}"
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("cloudinary simulator failed to start")
            time.sleep(0.01)
        socket.create_connection((host, bound_port), timeout=2).close()
        return self._base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("simulator not started")
        return self._base_url

    @property
    def cloudinary_url(self) -> str:
        return f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud_name}"

    # ----------------------------------------------------------------- inspection
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    @property
    def assets(self) -> Mapping[str, StoredAsset]:
        with self._lock:
            return MappingProxyType(dict(self._state.assets))

    def reset(self) -> None:
        """Forget assets, recordings and faults (configuration such as presets is kept)."""
        with self._lock:
            self._state = _State()

    # ----------------------------------------------------------------- faults
    def inject(self, path_suffix: str, fault: str, times: int = 1, delay: float = 0.0) -> None:
        if path_suffix not in ("upload", "destroy") or fault not in FAULTS or times < 1:
            raise ValueError(f"bad fault spec: {path_suffix!r} {fault!r} x{times}")
        with self._lock:
            self._state.faults.append(_Fault(path_suffix, fault, times, delay))

    def faults_pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._state.faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._state.faults.clear()

    def _take_fault(self, path_suffix: str) -> _Fault | None:
        with self._lock:
            for f in self._state.faults:
                if f.path_suffix == path_suffix:
                    f.remaining -= 1
                    if f.remaining == 0:
                        self._state.faults.remove(f)
                    return f
        return None

    # ----------------------------------------------------------------- handlers
    async def _read(self, request: Request) -> tuple[dict[str, str], bytes | None, str]:
        """Record the request; return (fields, file bytes, original filename)."""
        fields: dict[str, str] = {}
        data: bytes | None = None
        filename = "file"
        async with request.form(max_part_size=self.max_bytes * 2 + 1024) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data, filename = await value.read(), value.filename or "file"
                elif key == "file" and value.startswith("data:") and "base64," in value:
                    data = base64.b64decode(value.split("base64,", 1)[1])
                elif key.endswith("[]"):  # the SDK sends list values as repeated `name[]`
                    key = key[:-2]
                    fields[key] = f"{fields[key]},{value}" if key in fields else value
                else:
                    fields[key] = value
        size = None if data is None else len(data)
        with self._lock:
            self._state.requests.append(RecordedRequest("POST", request.url.path, fields, size))
        return dict(fields), data, filename

    def _authenticate(self, fields: Mapping[str, str], allow_unsigned: bool) -> Response | None:
        given = fields.get("signature", "")
        if not given:
            preset = fields.get("upload_preset")
            if preset and allow_unsigned and preset in self.unsigned_presets:
                return None
            if preset and allow_unsigned:
                msg = f"Upload preset must be whitelisted for unsigned uploads: {preset}"
                return _error(400, msg)
            return _error(400, "Missing required parameter - signature")
        if fields.get("api_key") != self.api_key:
            return _error(401, f"Unknown API key {fields.get('api_key', '')}")
        to_sign = string_to_sign(fields)
        expected = sign(fields, self.api_secret, "sha256" if len(given) == 64 else "sha1")
        if not hmac.compare_digest(expected.encode(), given.lower().encode()):
            return _error(401, f"Invalid Signature {given}. String to sign - '{to_sign}'.")
        timestamp = fields.get("timestamp", "")
        if not timestamp.isdigit():
            return _error(400, "Missing required parameter - timestamp")
        if int(timestamp) < time.time() - 3600:
            at = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
            return _error(
                400, f"Stale request - reported time is {at} which is more than 1 hour ago"
            )
        return None

    async def _api(self, request: Request) -> Response:
        action = request.url.path.rsplit("/", 1)[1]
        try:
            fields, data, filename = await self._read(request)
        except HTTPException as exc:
            return _error(400, str(exc.detail))
        fault = self._take_fault(action)
        if fault is not None and fault.fault == "500":
            return _error(500, "General Error")
        if fault is not None and fault.fault == "html502":
            return HTMLResponse("<html><body><h1>502 Bad Gateway</h1></body></html>", 502)
        cloud, resource_type = request.path_params["cloud"], request.path_params["resource_type"]
        if cloud != self.cloud_name:
            response: Response = _error(404, f"Invalid cloud_name {cloud}")
        elif resource_type not in RESOURCE_TYPES:
            response = _error(404, f"Invalid resource type {resource_type}")
        else:
            denied = self._authenticate(fields, allow_unsigned=action == "upload")
            if denied is not None:
                response = denied
            elif action == "upload":
                response = self._upload(resource_type, fields, data, filename)
            else:
                response = self._destroy(fields)
        if fault is not None:  # "slow": acted already, answer late
            await asyncio.sleep(fault.delay)
        return response

    def _upload(
        self, requested_type: str, fields: Mapping[str, str], data: bytes | None, filename: str
    ) -> Response:
        if data is None:
            return _error(400, "Missing required parameter - file")
        if len(data) > self.max_bytes:
            return _error(
                400, f"File size too large. Got {len(data)}. Maximum is {self.max_bytes}."
            )
        fmt = detect_image(data)
        if requested_type == "image" and fmt is None:
            return _error(400, "Invalid image file")
        resource_type = "image" if fmt else ("video" if requested_type == "video" else "raw")
        fmt = fmt or (filename.rsplit(".", 1)[1].lower() if "." in filename else "bin")
        folder = fields.get("folder", "").strip("/")
        name = fields.get("public_id") or "".join(secrets.choice(_ALNUM) for _ in range(20))
        public_id = f"{folder}/{name}" if folder else name
        overwrite = fields.get("overwrite", "1") not in ("0", "false")
        with self._lock:
            previous = self._state.assets.get(public_id)
            if previous is not None and not overwrite:
                return JSONResponse({**self._describe(previous), "existing": True})
            now = int(time.time())
            width, height = _dimensions(data, fmt)
            asset = StoredAsset(
                public_id=public_id,
                asset_id=previous.asset_id if previous else uuid.uuid4().hex,
                version=max(now, previous.version + 1) if previous else now,
                version_id=uuid.uuid4().hex,
                format=fmt,
                resource_type=resource_type,
                data=data,
                width=width,
                height=height,
                tags=tuple(t for t in fields.get("tags", "").split(",") if t),
                created_at=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                original_filename=filename.rsplit(".", 1)[0],
                asset_folder=folder,
            )
            self._state.assets[public_id] = asset
        return JSONResponse(self._describe(asset))

    def _describe(self, asset: StoredAsset) -> dict[str, object]:
        host = self.base_url.split("://", 1)[1]
        path = f"{self.cloud_name}/{asset.resource_type}/upload/v{asset.version}/{asset.public_id}"
        path += f".{asset.format}"
        # Response signatures use signature version 1: no "&" escaping.
        to_sign = f"public_id={asset.public_id}&version={asset.version}{self.api_secret}"
        return {
            "asset_id": asset.asset_id,
            "public_id": asset.public_id,
            "version": asset.version,
            "version_id": asset.version_id,
            "signature": _hexdigest("sha1", to_sign),
            "width": asset.width,
            "height": asset.height,
            "format": asset.format,
            "resource_type": asset.resource_type,
            "created_at": asset.created_at,
            "tags": list(asset.tags),
            "bytes": len(asset.data),
            "type": "upload",
            "etag": hashlib.md5(asset.data, usedforsecurity=False).hexdigest(),
            "placeholder": False,
            "url": f"http://{host}/{path}",
            "secure_url": f"https://{host}/{path}",
            "access_mode": "public",
            "asset_folder": asset.asset_folder,
            "display_name": asset.public_id.rsplit("/", 1)[-1],
            "original_filename": asset.original_filename,
            "api_key": self.api_key,
        }

    def _destroy(self, fields: Mapping[str, str]) -> Response:
        if not fields.get("public_id"):
            return _error(400, "Missing required parameter - public_id")
        with self._lock:
            found = self._state.assets.pop(fields["public_id"], None) is not None
        return JSONResponse({"result": "ok" if found else "not found"})

    async def _deliver(self, request: Request) -> Response:
        params = request.path_params
        public_id, _, fmt = str(params["rest"]).rpartition(".")
        with self._lock:
            self._state.requests.append(
                RecordedRequest(request.method, request.url.path, dict(request.query_params), None)
            )
            asset = self._state.assets.get(public_id)
        # Like Cloudinary, any version component serves the current asset.
        if asset is None or (params["cloud"], params["resource_type"], fmt) != (
            self.cloud_name,
            asset.resource_type,
            asset.format,
        ):
            return Response("Resource not found", status_code=404, media_type="text/plain")
        media_type = CONTENT_TYPES.get(asset.format, "application/octet-stream")
        return Response(asset.data, media_type=media_type)
