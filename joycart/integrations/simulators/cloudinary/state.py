"""What the Cloudinary simulator keeps (assets, recorded requests, pending faults) and how tests
read it and inject faults. State lives behind one lock: the app is served on its own thread."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType

from joycart.integrations.simulators.cloudinary.wire import (
    FAULTS,
    Fault,
    RecordedRequest,
    State,
    StoredAsset,
)


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = State()

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
            self._state = State()

    # ----------------------------------------------------------------- faults
    def inject(self, path_suffix: str, fault: str, times: int = 1, delay: float = 0.0) -> None:
        if path_suffix not in ("upload", "destroy") or fault not in FAULTS or times < 1:
            raise ValueError(f"bad fault spec: {path_suffix!r} {fault!r} x{times}")
        with self._lock:
            self._state.faults.append(Fault(path_suffix, fault, times, delay))

    def faults_pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._state.faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._state.faults.clear()

    def _take_fault(self, path_suffix: str) -> Fault | None:
        with self._lock:
            for f in self._state.faults:
                if f.path_suffix == path_suffix:
                    f.remaining -= 1
                    if f.remaining == 0:
                        self._state.faults.remove(f)
                    return f
        return None
