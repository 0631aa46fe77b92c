"""A loopback TCP listener that counts the connections it is offered and answers none: what an
outbound-guard test points a refused URL at, to show nothing reached it."""

from __future__ import annotations

import socket
import threading


class Listener:
    """Listens on 127.0.0.1 (`port`) and counts `connections`, closing each at once."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = int(self.socket.getsockname()[1])
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()
