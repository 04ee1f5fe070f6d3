"""Fixtures for the sandbox's own tests.

The sandbox process itself comes from the shared harness (tests/conftest.py:
`sandbox_server`, one per session, in its own process group). Here every test
is made to use the shared `sandbox` fixture, which resets the sandbox before
the test and asserts after it that no Calendar response broke its schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandbox.control import SandboxControl
from tests.support.sandbox_clients import (
    ADMIN,
    CALENDAR,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    calendar_service,
)


@pytest.fixture(autouse=True)
def sandbox(sandbox: SandboxControl) -> SandboxControl:
    """The shared fixture, made autouse for this directory; registers the test client."""
    sandbox.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    return sandbox


@pytest.fixture
def calendar_as(sandbox: SandboxControl) -> Callable[..., Any]:
    """A Calendar service for `email` with `scope`, through a real refresh token."""

    def make(email: str = ADMIN, scope: str = CALENDAR) -> Any:
        return calendar_service(sandbox, email, scope)

    return make


@pytest.fixture
def calendar(calendar_as: Callable[..., Any]) -> Any:
    """The school admin's Calendar service with full calendar scope."""
    return calendar_as()
