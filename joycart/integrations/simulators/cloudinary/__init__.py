"""In-process fake of Cloudinary's Upload API for tests and local development.

``CloudinarySimulator`` serves a Starlette app on 127.0.0.1 that the real ``cloudinary`` SDK
(1.46.x) can talk to when given ``upload_prefix=sim.base_url``.  It implements signed (and
preset-based unsigned) ``upload`` and ``destroy`` exactly as Cloudinary checks them: cloud name,
API key, request signature (SHA-1 or SHA-256, detected by length), one-hour timestamp window, size
limit and image magic bytes.  Uploaded bytes are kept in memory and served back from the ``url``
in the upload response.  Every request is recorded, and faults (HTTP 500, HTML 502, slow answers)
can be injected to exercise the caller's error handling.

The package, by concern: `wire` (signatures, image detection, what is recorded and stored) and
`simulator` (the app and its serving).
"""

from joycart.integrations.simulators.cloudinary.simulator import CloudinarySimulator
from joycart.integrations.simulators.cloudinary.wire import (
    RecordedRequest,
    StoredAsset,
    detect_image,
    sign,
    string_to_sign,
)

__all__ = [
    "CloudinarySimulator",
    "RecordedRequest",
    "StoredAsset",
    "detect_image",
    "sign",
    "string_to_sign",
]
