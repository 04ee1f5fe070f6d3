"""The sandbox's HTTP side: routing, injected faults, stats, schema checks of every
Calendar response, and the threaded server."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.serving import make_server as make_wsgi_server
from werkzeug.wrappers import Request, Response

from sandbox import calendar_api, control_api, fields, oauth, secret_manager
from sandbox.errors import CalendarError, SandboxError, fault_error, json_response
from sandbox.notifications import Notifier
from sandbox.routing import Reply, RequestContext, Route, api_of_path
from sandbox.schema import DiscoverySchema
from sandbox.signing import SigningKey
from sandbox.state import Fault, State

LOGGER = logging.getLogger(__name__)


class Sandbox:
    """The WSGI application and everything it shares between requests."""

    def __init__(self) -> None:
        self.state = State()
        self.keys = SigningKey()  # kept across resets, as Google's keys outlive a test
        self.notifier = Notifier(self.state)
        self.calendar_schema = DiscoverySchema.bundled("calendar", "v3")
        self.routes: list[Route] = [
            *calendar_api.routes(),
            *oauth.routes(),
            *secret_manager.routes(),
            *control_api.routes(),
        ]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def reset(self) -> None:
        self.notifier.stop_all()
        self.state.clear()

    def close(self) -> None:
        self.notifier.stop_all()

    def count(self, key: str) -> None:
        with self.state.lock:
            self.state.stats.requests[key] += 1

    def handle(self, request: Request) -> Response:
        matched = self._match(request)
        if isinstance(matched, Response):
            return matched
        target, params = matched
        ctx = RequestContext(request, params, self, target.method_id)
        if target.api != "control":
            self.count(target.method_id)
            fault = self._take_fault(request, target)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status:
                    if fault.commit:
                        # Google did the work; only the answer is lost.
                        self._run(target, ctx, None)
                    return fault_error(
                        target.api, fault.status, fault.reason, fault.message
                    ).to_response()
        selection = None
        if target.api == "calendar" and request.args.get("fields"):
            try:
                selection = self._selection(target, request.args["fields"])
            except fields.FieldsError as exc:
                return CalendarError(
                    400, "invalidParameter", str(exc), location_type="parameter", location="fields"
                ).to_response()
        return self._run(target, ctx, selection)

    def _match(self, request: Request) -> tuple[Route, dict[str, str]] | Response:
        path = request.path
        path_matched = False
        for candidate in self.routes:
            match = candidate.pattern.match(path)
            if match is None:
                continue
            path_matched = True
            if candidate.http_method == request.method:
                return candidate, {k: v for k, v in match.groupdict().items() if v is not None}
        api = api_of_path(path)
        if path_matched:
            return fault_error(api, 405, None, f"Method {request.method} not allowed").to_response()
        return fault_error(api, 404, None, f"Not Found: {path}").to_response()

    def _take_fault(self, request: Request, target: Route) -> Fault | None:
        with self.state.lock:
            for fault in self.state.faults:
                # `method` is an HTTP method (any case) or a discovery method id.
                if fault.remaining == 0:
                    continue
                wanted = fault.method
                if wanted and wanted.upper() != request.method and wanted != target.method_id:
                    continue
                if not re.search(fault.path, request.path):
                    continue
                if fault.probability is not None and random.random() >= fault.probability:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                fault.fired += 1
                self.state.stats.faults_fired += 1
                return fault
        return None

    def _selection(self, target: Route, expression: str) -> fields.Selection | None:
        schema_name = self.calendar_schema.response_ref(target.method_id)
        if schema_name is None:
            return None
        selection = fields.parse(expression)
        fields.check(selection, self.calendar_schema, schema_name)
        return selection

    def _run(
        self, target: Route, ctx: RequestContext, selection: fields.Selection | None
    ) -> Response:
        try:
            result = target.handler(ctx)
        except SandboxError as exc:
            return exc.to_response()
        except Exception:
            LOGGER.exception("sandbox handler %s failed", target.method_id)
            return fault_error(target.api, 500, None, "Internal error in the sandbox").to_response()
        if isinstance(result, Response):
            return result
        return self._finish(target, result, selection)

    def _finish(self, target: Route, reply: Reply, selection: fields.Selection | None) -> Response:
        if reply.body is None:
            return Response(status=reply.status, headers=reply.headers)
        body = reply.body
        if target.api == "calendar":
            self._check_schema(target.method_id, body)
            if selection is not None:
                body = fields.apply(body, selection)
        return json_response(body, reply.status, reply.headers)

    def _check_schema(self, method_id: str, body: Any) -> None:
        violations = self.calendar_schema.validate_response(method_id, body)
        if not violations:
            return
        with self.state.lock:
            for violation in violations:
                LOGGER.error("schema violation in %s: %s", method_id, violation)
                self.state.stats.schema_violations.append(
                    {"method": method_id, "path": violation.path, "problem": violation.problem}
                )


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
