"""What the Secret Manager backend stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class SecretVersion:
    number: int
    data: bytes | None
    state: str
    created: datetime
    client_checksum: bool = False
    destroyed: datetime | None = None


@dataclass
class Secret:
    name: str
    created: datetime
    replication: dict[str, Any]
    labels: dict[str, str]
    versions: dict[int, SecretVersion] = field(default_factory=dict)
