"""The supervisor of `joycart serve --workers N`: uvicorn's, with one listening socket per API
process.

uvicorn's own supervisor hands every process the same listening socket. Each process's event
loop then accepts every connection waiting when it wakes, so when a client (a load balancer, a
proxy's keep-alive pool, a load generator) opens its connections in a burst, one process takes
them all and the others stay idle for as long as those connections live: measured with 16
keep-alive connections, one API process at 99 % CPU and the other at 1 %.

Here each API process gets a socket of its own, all bound to the same port with `SO_REUSEPORT`,
so the kernel spreads new connections over the processes. The sockets are created, bound and
kept by the parent: a process that dies is replaced on the same socket, and connections that
arrived for it meanwhile wait in that socket's queue instead of being refused. On the first stop
signal the parent closes its copies (so no new connection is completed once every process has
stopped accepting), then uvicorn's usual drain follows.

Where `SO_REUSEPORT` does not exist, every process shares one socket, as with uvicorn's.
"""

from __future__ import annotations

import logging
import socket

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("joycart")


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one address (one per API process), or one shared socket
    where the platform has no `SO_REUSEPORT`. Port 0 takes a free port for all of them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if reuse_port is not None else 1):
            # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only then.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port is not None:
                sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Supervisor(Multiprocess):
    """uvicorn's supervisor, plus: process `i` always serves socket `i` (see the module
    docstring); the parent's copies of the sockets close on the first stop signal; the live
    gauges of an API process that died are dropped."""

    def _socket_of(self, index: int) -> list[socket.socket]:
        return [self.sockets[index % len(self.sockets)]]

    def init_processes(self) -> None:
        for index in range(self.processes_num):
            process = Process(self.config, self._socket_of(index))
            process.start()
            self.processes.append(process)

    def restart_all(self) -> None:
        """SIGHUP: replace each process by one on the same socket, the new one ready first."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = Process(self.config, self._socket_of(index))
            new.start()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    log.error("API process %s was not ready in time; restart aborted", new.pid)
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung or gone
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # It failed before serving: every replacement would fail the same way.
                log.error("API process %s failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.warning("API process %s died; starting a new one on its socket", process.pid)
            if process.pid is not None:
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]
            replacement = Process(self.config, self._socket_of(index))
            replacement.start()
            self.processes[index] = replacement

    def _stop_listening(self) -> None:
        for sock in self.sockets:
            sock.close()

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()
