"""A TCP relay between rlsweep and a real database server that the tests can cut: every connection
through it is dropped and new ones are refused for a while, as when the server restarts or fails
over. The server itself is shared by the whole suite and never touched."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit, urlunsplit


class Relay:
    """Listens on 127.0.0.1 (a free port) and relays each connection to `upstream` (host, port)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.lock = threading.Lock()
        self.live: list[socket.socket] = []
        self.accepted = 0  # connections relayed
        self.dropped = 0  # connections open when a cut dropped them
        self.listener = self._listen(0)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        self.back = threading.Event()  # set: a cut in progress ends now (`cut`'s `seconds` at most)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def url(self, url: str) -> str:
        """`url` (a server's SQLAlchemy URL) pointed at the relay instead."""
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        return urlunsplit(parts._replace(netloc=f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"))

    def cut(self, seconds: float, wait: bool = True) -> None:
        """Drop every open connection and refuse new ones for `seconds`, then listen again; with
        `wait` False, return once the connections are dropped (listening again in a thread)."""
        with self.lock:
            listener, self.listener = self.listener, None
            live, self.live = self.live, []
            self.dropped += len(live) // 2
            self.back.clear()
        _close(listener)
        for sock in live:
            _close(sock)
        if wait:
            self._restore(seconds)
        else:
            threading.Thread(target=self._restore, args=(seconds,), daemon=True).start()

    def _restore(self, seconds: float) -> None:
        self.back.wait(seconds)
        with self.lock:
            if self.closed:
                return
            self.listener = self._listen(self.port)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            listener, self.listener = self.listener, None
            live, self.live = self.live, []
        _close(listener)
        for sock in live:
            _close(sock)

    @staticmethod
    def _listen(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        return sock

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by a cut or close
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self.lock:
                if self.listener is not listener:  # cut while connecting
                    _close(client)
                    _close(server)
                    continue
                self.live += [client, server]
                self.accepted += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with self.lock:  # ended by either side: no longer open for a cut to drop
            self.live = [s for s in self.live if s is not source and s is not sink]
        _close(source)
        _close(sink)


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
