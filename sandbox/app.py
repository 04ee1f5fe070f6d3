"""The WSGI application: the APIs mounted side by side, and what happens to every
request whatever its API (routing, injected faults, stats, `fields=` partial
responses, the schema check of every JSON answer, errors for unknown paths).

This is the one module that knows every API package; adding an API means building
its backend here and adding its `routes.apis(backend)` to `self.apis`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from sandbox.calendar import routes as calendar_routes
from sandbox.calendar.backend import CalendarBackend
from sandbox.control import routes as control_routes
from sandbox.control.backend import ControlBackend
from sandbox.control.errors import fault_error as control_error
from sandbox.core import fields
from sandbox.core.errors import SandboxError, json_response
from sandbox.core.faults import FaultTable
from sandbox.core.routing import Api, ApiRequest, Reply, Route
from sandbox.core.schema import DiscoverySchema
from sandbox.core.signing import SigningKey
from sandbox.core.stats import Stats
from sandbox.iam import routes as iam_routes
from sandbox.iam.backend import IamBackend
from sandbox.mercadopago import routes as mercadopago_routes
from sandbox.mercadopago.backend import MercadoPagoBackend
from sandbox.oauth import jwt_bearer
from sandbox.oauth import routes as oauth_routes
from sandbox.oauth.backend import OAuthBackend
from sandbox.secretmanager import routes as secretmanager_routes
from sandbox.secretmanager.backend import SecretManagerBackend

LOGGER = logging.getLogger(__name__)
# Paths no API claims answer in the control API's shape, as every path outside Google's.
_ELSEWHERE = Api("elsewhere", (), (), control_error, faultable=False)


class Sandbox:
    """The WSGI application and the backends it shares between requests."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.faults = FaultTable(self.stats)
        self.iam = IamBackend()
        # Kept across resets, as Google's keys outlive a test.
        self.oauth = OAuthBackend(
            stats=self.stats, keys=SigningKey(), service_account_keys=self._service_account_keys
        )
        self.calendar = CalendarBackend(stats=self.stats, token_info=self.oauth.access_info)
        self.secretmanager = SecretManagerBackend()
        self.mercadopago = MercadoPagoBackend()
        self.control = ControlBackend(
            self.calendar, self.oauth, self.secretmanager, self.faults, self.stats, self.iam
        )
        self.control.others.append(self.mercadopago)
        # Unknown paths take the error shape of the first API claiming their prefix.
        self.apis: list[Api] = [
            *calendar_routes.apis(self.calendar),
            *iam_routes.apis(self.iam),
            # Before Secret Manager, whose /v1/ prefix would claim MercadoPago's paths.
            *mercadopago_routes.apis(self.mercadopago),
            *secretmanager_routes.apis(self.secretmanager),
            *oauth_routes.apis(self.oauth),
            *control_routes.apis(self.control),
        ]
        self._routes: list[tuple[Api, Route]] = [(a, r) for a in self.apis for r in a.routes]
        self._schemas: dict[str, DiscoverySchema] = {
            route.method_id: api.schema for api, route in self._routes if api.schema is not None
        }

    def _service_account_keys(self, email: str) -> jwt_bearer.Keys | None:
        """What OAuth's JWT-bearer grant asks IAM: a service account's public keys."""
        found = self.iam.public_keys(email)
        return jwt_bearer.Keys(found.email, found.unique_id, found.keys) if found else None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def reset(self) -> None:
        self.control.reset()

    def close(self) -> None:
        self.control.close()

    def handle(self, request: Request) -> Response:
        matched = self._match(request)
        if isinstance(matched, Response):
            return matched
        api, target, params = matched
        req = ApiRequest(request, params, target.method_id)
        if api.faultable:
            self.stats.count("requests", target.method_id)
            fault = self.faults.take(request.method, request.path, target.method_id)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status:
                    if fault.commit:
                        # Google did the work; only the answer is lost.
                        self._run(api, target, req, None)
                    # `details` only when given: an API's fault_error may not take it.
                    extra = {"details": fault.details} if fault.details is not None else {}
                    error = api.error(fault.status, fault.reason, fault.message, **extra)
                    return error.to_response()
        selection = None
        if api.invalid_fields is not None and request.args.get("fields"):
            try:
                selection = self._selection(target, request.args["fields"])
            except fields.FieldsError as exc:
                return api.invalid_fields(str(exc)).to_response()
        return self._run(api, target, req, selection)

    def _match(self, request: Request) -> tuple[Api, Route, dict[str, str]] | Response:
        path = request.path
        path_matched = False
        for api, candidate in self._routes:
            match = candidate.pattern.match(path)
            if match is None:
                continue
            path_matched = True
            if candidate.http_method == request.method:
                params = {k: v for k, v in match.groupdict().items() if v is not None}
                return api, candidate, params
        error = self._api_of_path(path).error
        if path_matched:
            return error(405, None, f"Method {request.method} not allowed").to_response()
        return error(404, None, f"Not Found: {path}").to_response()

    def _api_of_path(self, path: str) -> Api:
        for api in self.apis:
            if path.startswith(api.prefixes):
                return api
        return _ELSEWHERE

    def _selection(self, target: Route, expression: str) -> fields.Selection | None:
        schema = self._schemas.get(target.method_id)
        schema_name = schema.response_ref(target.method_id) if schema is not None else None
        if schema is None or schema_name is None:
            return None
        selection = fields.parse(expression)
        fields.check(selection, schema, schema_name)
        return selection

    def _run(
        self, api: Api, target: Route, req: ApiRequest, selection: fields.Selection | None
    ) -> Response:
        try:
            result = target.handler(req)
        except SandboxError as exc:
            return exc.to_response()
        except Exception:
            LOGGER.exception("sandbox handler %s failed", target.method_id)
            return api.error(500, None, "Internal error in the sandbox").to_response()
        if isinstance(result, Response):
            return result
        return self._finish(target, result, selection)

    def _finish(self, target: Route, reply: Reply, selection: fields.Selection | None) -> Response:
        if reply.body is None:
            return Response(status=reply.status, headers=reply.headers)
        body = reply.body
        if target.method_id in self._schemas:
            self._check_schema(target.method_id, body)
            if selection is not None:
                body = fields.apply(body, selection)
        return json_response(body, reply.status, reply.headers)

    def _check_schema(self, method_id: str, body: Any) -> None:
        """Log and count every way `body` breaks the method's response schema."""
        schema = self._schemas.get(method_id)
        if schema is None:
            return
        for violation in schema.validate_response(method_id, body):
            LOGGER.error("schema violation in %s: %s", method_id, violation)
            self.stats.schema_violation(method_id, violation.path, violation.problem)
