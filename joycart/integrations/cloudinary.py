"""Product images on Cloudinary through its official SDK, the only module that imports it.

The SDK is synchronous and keeps a process-wide config; every call here runs in a worker thread
and passes its credentials, endpoint and timeout per call, so the global config is never read
for them and two stores (or two tests) never interfere. Any SDK or configuration failure becomes
`ImageStoreError`: the caller does not know whether anything was stored.

Signed direct uploads: `sign_direct_upload` gives the browser the fields to post straight to
Cloudinary, and `verify_upload` checks the signature Cloudinary puts on its answer, so the
public id and version the browser reports back can be trusted.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import io
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit

import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils

from joycart.integrations.images import ALLOWED_TYPES, ImageStoreError, StoredImage

log = logging.getLogger("joycart.cloudinary")
# Cloudinary's SDK blocks: its calls get threads of their own, apart from asyncio's default ones.
_CALL_THREADS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="cloudinary")

DEFAULT_API_URL = "https://api.cloudinary.com"
DEFAULT_DELIVERY_URL = "https://res.cloudinary.com"
# Signed into every direct-upload ticket: Cloudinary itself refuses any other format.
DIRECT_UPLOAD_FORMATS = ",".join(sorted(ALLOWED_TYPES.values()))


def parse_cloudinary_url(url: str) -> tuple[str, str, str]:
    """(cloud_name, api_key, api_secret) from `cloudinary://key:secret@cloud`."""
    parts = urlsplit(url)
    userinfo, _, cloud = parts.netloc.rpartition("@")
    api_key, _, api_secret = userinfo.partition(":")
    if parts.scheme != "cloudinary" or not (cloud and api_key and api_secret):
        raise ValueError("JOYCART_CLOUDINARY_URL must look like cloudinary://key:secret@cloud")
    return unquote(cloud), unquote(api_key), unquote(api_secret)


def response_signature(public_id: str, version: int, api_secret: str) -> str:
    """What Cloudinary signs its upload answers with (signature version 1, SHA-1)."""
    to_sign = f"public_id={public_id}&version={version}{api_secret}"
    return hashlib.sha1(to_sign.encode()).hexdigest()  # noqa: S324 - Cloudinary's protocol


class CloudinaryImageStore:
    """Signed uploads and deletions on one Cloudinary product environment."""

    kind = "CLOUDINARY"

    def __init__(
        self,
        cloudinary_url: str,
        *,
        api_url: str = DEFAULT_API_URL,
        timeout: float,
        delivery_url: str | None = None,
    ) -> None:
        self.cloud_name, self.api_key, self._api_secret = parse_cloudinary_url(cloudinary_url)
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        # Cloudinary delivers from res.cloudinary.com; any other upload host (the simulator)
        # is taken to deliver from itself, which is what the simulator does.
        if delivery_url is None:
            host = urlsplit(self.api_url).netloc
            same = self.api_url == DEFAULT_API_URL
            delivery_url = DEFAULT_DELIVERY_URL if same else f"https://{host}"
        self.delivery_url = delivery_url.rstrip("/")

    def _options(self) -> dict[str, Any]:
        # Every key the SDK would otherwise read from its global config is given here.
        return {
            "cloud_name": self.cloud_name,
            "api_key": self.api_key,
            "api_secret": self._api_secret,
            "upload_prefix": self.api_url,
            "signature_algorithm": "sha1",
            "signature_version": 2,
            "oauth_token": None,
            "upload_preset": None,
            "timeout": self.timeout,
        }

    async def _call(self, what: str, fn: Callable[[], Any]) -> dict[str, Any]:
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(_CALL_THREADS, contextvars.copy_context().run, fn)
        except (cloudinary.exceptions.Error, ValueError) as exc:
            log.warning("cloudinary %s failed: %s: %s", what, type(exc).__name__, exc)
            raise ImageStoreError(f"Cloudinary {what}: {type(exc).__name__}: {exc}"[:300]) from exc
        if not isinstance(result, dict):
            raise ImageStoreError(f"unexpected answer to Cloudinary {what}: {result!r}"[:300])
        return result

    def key_for(self, *, folder: str, name: str, content_type: str) -> str:
        return f"{folder}/{name}"  # the public id; Cloudinary keeps the format apart

    async def put(self, *, folder: str, name: str, data: bytes, content_type: str) -> StoredImage:
        options = {
            **self._options(),
            "folder": folder,
            "public_id": name,
            "overwrite": False,
            "resource_type": "image",
            "filename": f"{name}.{ALLOWED_TYPES[content_type]}",
        }
        result = await self._call(
            "upload", lambda: cloudinary.uploader.upload(io.BytesIO(data), **options)
        )
        try:
            return StoredImage(key=str(result["public_id"]), url=str(result["secure_url"]))
        except KeyError as exc:
            raise ImageStoreError(f"Cloudinary upload answer lacks {exc}") from exc

    async def delete(self, key: str) -> None:
        """Destroy the asset; one that is already gone counts as deleted."""
        options = {**self._options(), "resource_type": "image", "invalidate": True}
        result = await self._call("destroy", lambda: cloudinary.uploader.destroy(key, **options))
        if result.get("result") not in ("ok", "not found"):
            raise ImageStoreError(f"Cloudinary destroy of {key!r} answered {result!r}"[:300])

    def sign_direct_upload(self, folder: str) -> dict[str, Any]:
        """The fields a browser posts (with its file) to upload into `folder` for an hour."""
        params: dict[str, Any] = {
            "timestamp": int(time.time()),
            "folder": folder,
            "allowed_formats": DIRECT_UPLOAD_FORMATS,
        }
        signature = cloudinary.utils.api_sign_request(params, self._api_secret, "sha1", 2)
        return {
            **params,
            "signature": signature,
            "api_key": self.api_key,
            "cloud_name": self.cloud_name,
            "upload_url": f"{self.api_url}/v1_1/{self.cloud_name}/image/upload",
        }

    def verify_upload(self, public_id: str, version: int, signature: str) -> bool:
        """Whether Cloudinary really answered an upload with this public id and version."""
        expected = response_signature(public_id, version, self._api_secret)
        return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())

    def delivery_url_for(self, public_id: str, version: int, image_format: str) -> str:
        """The https URL Cloudinary serves an uploaded image from."""
        path = f"{self.cloud_name}/image/upload/v{version}/{public_id}.{image_format}"
        return f"{self.delivery_url}/{path}"
