"""A TCP proxy on loopback that can go silent: what a phone sees when it walks
out of Wi-Fi range. While paused it forwards nothing in either direction and
closes nothing; connections made meanwhile are accepted and then hang, the way
a handshake over a dead radio hangs. On resume everything held flows on, as a
radio coming back retransmits what TCP kept.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

CHUNK = 65536


class SilentProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.upstream[0]}:{self.port}"

    def pause(self) -> None:
        """Stop forwarding, without closing or refusing anything."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._track(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _wait_flowing(self) -> bool:
        while not self._flowing.wait(0.2):
            if self._closed.is_set():
                return False
        return not self._closed.is_set()

    def _connect(self, client: socket.socket) -> None:
        if not self._wait_flowing():
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        self._track(server)
        threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
        self._pump(server, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(CHUNK)
                # Held, not dropped, while paused: TCP would retransmit it later.
                if not self._wait_flowing():
                    return
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.close()
                except OSError:
                    pass
        self._thread.join(5)

    def __enter__(self) -> SilentProxy:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
