"""A TCP proxy on loopback in front of a real server (Redis), which a test can cut and restore.

`cut("refuse")` closes the listening socket and every connection through it: new connections are
refused at once, as when the server is down. `cut("stall")` keeps accepting but forwards nothing, as
when the server hangs or the network drops packets: a client waits out its own timeouts.
`restore()` listens again on the same port and forwards as before.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal

Cut = Literal["refuse", "stall"]


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target` until cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stalled = False

    def __enter__(self) -> TcpProxy:
        self.restore()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cut("refuse")

    def restore(self) -> None:
        """Listen (again, on the same port) and forward."""
        with self._lock:
            self._stalled = False
            if self._listener is None:
                listener = socket.socket()
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind(("127.0.0.1", self.port))
                listener.listen(64)
                self.port = listener.getsockname()[1]
                self._listener = listener
                threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self, how: Cut) -> None:
        """Drop every connection; then refuse new ones, or accept them and forward nothing."""
        with self._lock:
            self._stalled = how == "stall"
            if how == "refuse" and self._listener is not None:
                self._close(self._listener)
                self._listener = None
            for sock in self._sockets:
                self._close(sock)
            self._sockets = []

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut()
            with self._lock:
                self._sockets.append(client)
                if self._stalled:
                    continue  # held open, never answered
                try:
                    server = socket.create_connection(self.target, timeout=5)
                except OSError:
                    self._close(client)
                    continue
                server.settimeout(None)
                self._sockets.append(server)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._close(sink)

    @staticmethod
    def _close(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
