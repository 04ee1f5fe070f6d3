"""IAM Credentials' HTTP side: read the JSON body, call the backend, render."""

from __future__ import annotations

from sandbox.core.routing import ApiRequest, Reply
from sandbox.iam import render
from sandbox.iam.backend import IamBackend
from sandbox.iam.errors import IamError


def sign_jwt(backend: IamBackend, req: ApiRequest) -> Reply:
    body = req.json_body(lambda message: IamError(400, message))
    key_id, jwt = backend.sign_jwt(
        f"projects/-/serviceAccounts/{req.params['email']}", body.get("payload")
    )
    return Reply(render.signed_jwt(key_id, jwt))
