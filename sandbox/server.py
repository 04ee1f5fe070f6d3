"""The threaded HTTP server around one `Sandbox` application; `make_server`."""

from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.serving import make_server as make_wsgi_server

from sandbox.app import Sandbox


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request: a test run makes thousands."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class SandboxServer:
    """A threaded HTTP server around one Sandbox; run it with serve_forever()."""

    def __init__(self, host: str, port: int) -> None:
        self.app = Sandbox()
        self._server: BaseWSGIServer = make_wsgi_server(
            host, port, self.app, threaded=True, request_handler=_QuietRequestHandler
        )
        self.host = host
        self.port = self._server.server_port
        self._serving = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        self._serving.set()
        self._server.serve_forever(poll_interval=0.1)

    def shutdown(self) -> None:
        # BaseServer.shutdown() waits for serve_forever() to finish: only call it
        # when the loop was started, or it would wait forever.
        if self._serving.is_set():
            self._server.shutdown()
        self._server.server_close()
        self.app.close()


def make_server(host: str = "127.0.0.1", port: int = 0) -> SandboxServer:
    return SandboxServer(host, port)
