"""Publishing one Pub/Sub message, over the REST API (no gRPC client to load).

With ``PUBSUB_EMULATOR_HOST`` set the message goes to the emulator without credentials,
as Google's own clients do; otherwise to ``pubsub.googleapis.com`` as the function's
service account (Application Default Credentials), which needs ``roles/pubsub.publisher``
on that topic and nothing else.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from typing import Any

from shared.core.config import get_config
from shared.core.errors import GoogleUnavailable, PermanentError

_lock = threading.Lock()
_session: Any = None
PUBLISH_TIMEOUT_SECONDS = 5.0


def _authorized_session() -> Any:
    global _session
    if _session is None:
        with _lock:
            if _session is None:
                import google.auth
                from google.auth.transport.requests import AuthorizedSession

                credentials, _ = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/pubsub"]
                )
                _session = AuthorizedSession(credentials)
    return _session


def publish(topic: str, message: dict[str, Any]) -> str:
    """Publish ``message`` as JSON to ``topic`` (a name in GOOGLE_CLOUD_PROJECT);
    returns the message id."""
    import requests

    project = get_config().project
    data = base64.b64encode(json.dumps(message, separators=(",", ":")).encode()).decode()
    body = {"messages": [{"data": data}]}
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    path = f"v1/projects/{project}/topics/{topic}:publish"
    try:
        if emulator:
            response = requests.post(
                f"http://{emulator}/{path}", json=body, timeout=PUBLISH_TIMEOUT_SECONDS
            )
        else:
            response = _authorized_session().post(
                f"https://pubsub.googleapis.com/{path}", json=body, timeout=PUBLISH_TIMEOUT_SECONDS
            )
    except requests.RequestException as error:
        raise GoogleUnavailable(f"Pub/Sub publish: {type(error).__name__}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise GoogleUnavailable(f"Pub/Sub publish: HTTP {response.status_code}")
    if response.status_code != 200:
        raise PermanentError(
            f"Pub/Sub publish to {topic}: HTTP {response.status_code}", code="publish_refused"
        )
    return str(response.json()["messageIds"][0])


def reset() -> None:
    global _session
    with _lock:
        _session = None
