"""The simulator: the Upload API (`upload`, `destroy`) and delivery of stored bytes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from joycart.integrations.simulators import serving
from joycart.integrations.simulators.cloudinary.state import Recorder
from joycart.integrations.simulators.cloudinary.wire import (
    ALNUM,
    CONTENT_TYPES,
    RESOURCE_TYPES,
    RecordedRequest,
    StoredAsset,
    detect_image,
    dimensions,
    error_response,
    hexdigest,
    sign,
    string_to_sign,
)


class CloudinarySimulator(Recorder):
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
        super().__init__()
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
        sock = serving.bind(host, port)
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=3
        )
        self._server, self._sock = serving.EmbeddedServer(config), sock
        self._base_url = serving.base_url(sock)
        try:
            self._thread = serving.start_thread(self._server, sock, "cloudinary-sim")
        except RuntimeError:
            self.stop()
            raise
        return self._base_url

    def stop(self) -> None:
        serving.stop_thread(self._server, self._thread)
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
                return error_response(400, msg)
            return error_response(400, "Missing required parameter - signature")
        if fields.get("api_key") != self.api_key:
            return error_response(401, f"Unknown API key {fields.get('api_key', '')}")
        to_sign = string_to_sign(fields)
        expected = sign(fields, self.api_secret, "sha256" if len(given) == 64 else "sha1")
        if not hmac.compare_digest(expected.encode(), given.lower().encode()):
            return error_response(401, f"Invalid Signature {given}. String to sign - '{to_sign}'.")
        timestamp = fields.get("timestamp", "")
        if not timestamp.isdigit():
            return error_response(400, "Missing required parameter - timestamp")
        if int(timestamp) < time.time() - 3600:
            at = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
            return error_response(
                400, f"Stale request - reported time is {at} which is more than 1 hour ago"
            )
        return None

    async def _api(self, request: Request) -> Response:
        action = request.url.path.rsplit("/", 1)[1]
        try:
            fields, data, filename = await self._read(request)
        except HTTPException as exc:
            return error_response(400, str(exc.detail))
        fault = self._take_fault(action)
        if fault is not None and fault.fault == "500":
            return error_response(500, "General Error")
        if fault is not None and fault.fault == "html502":
            return HTMLResponse("<html><body><h1>502 Bad Gateway</h1></body></html>", 502)
        cloud, resource_type = request.path_params["cloud"], request.path_params["resource_type"]
        if cloud != self.cloud_name:
            response: Response = error_response(404, f"Invalid cloud_name {cloud}")
        elif resource_type not in RESOURCE_TYPES:
            response = error_response(404, f"Invalid resource type {resource_type}")
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
            return error_response(400, "Missing required parameter - file")
        if len(data) > self.max_bytes:
            return error_response(
                400, f"File size too large. Got {len(data)}. Maximum is {self.max_bytes}."
            )
        fmt = detect_image(data)
        if requested_type == "image" and fmt is None:
            return error_response(400, "Invalid image file")
        resource_type = "image" if fmt else ("video" if requested_type == "video" else "raw")
        fmt = fmt or (filename.rsplit(".", 1)[1].lower() if "." in filename else "bin")
        folder = fields.get("folder", "").strip("/")
        name = fields.get("public_id") or "".join(secrets.choice(ALNUM) for _ in range(20))
        public_id = f"{folder}/{name}" if folder else name
        overwrite = fields.get("overwrite", "1") not in ("0", "false")
        with self._lock:
            previous = self._state.assets.get(public_id)
            if previous is not None and not overwrite:
                return JSONResponse({**self._describe(previous), "existing": True})
            now = int(time.time())
            width, height = dimensions(data, fmt)
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
            "signature": hexdigest("sha1", to_sign),
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
            return error_response(400, "Missing required parameter - public_id")
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
