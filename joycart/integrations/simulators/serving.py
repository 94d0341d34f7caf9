"""Serving a simulator's Starlette app with uvicorn: on a daemon thread (tests, `joycart serve` in
development) or in a process of its own (`razorpay_process`)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Generator

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """Leaves signal handling to whoever owns the process (the tests or the dev server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket. IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only then (else about
    40 ms more per request)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def base_url(sock: socket.socket) -> str:
    bound_host, bound_port = sock.getsockname()[:2]
    return f"http://{bound_host}:{bound_port}"


def start_thread(server: uvicorn.Server, sock: socket.socket, name: str) -> threading.Thread:
    """Serve on a daemon thread; return it once the server accepts connections."""
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the simulator {name} did not start")
        time.sleep(0.005)
    return thread


def stop_thread(server: uvicorn.Server | None, thread: threading.Thread | None) -> None:
    if server is not None:
        server.should_exit = True
    if thread is not None:
        thread.join(timeout=10)
