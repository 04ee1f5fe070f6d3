"""The IAM backend: service accounts, their keys, and `signJwt`.

Every read and write happens under `lock`. Keys are RSA-2048, as Google's are; a
registered account keeps its Google-managed key until `reset()`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any

from sandbox.core import timeutil
from sandbox.core.signing import SigningKey
from sandbox.iam.errors import IamError
from sandbox.iam.models import PublicKeys, ServiceAccount

_EMAIL_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@([a-z0-9-]+)\.iam\.gserviceaccount\.com$")
# Google refuses to sign a JWT that expires more than 12 hours ahead.
MAX_SIGNED_LIFETIME = 12 * 3600


def unique_id_for(email: str) -> str:
    """A stable 21-digit id, like Google's service-account unique ids."""
    digest = hashlib.sha256(f"sa:{email.lower()}".encode()).digest()
    return str(10**20 + int.from_bytes(digest[:8], "big") % (9 * 10**20))


class IamBackend:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.accounts: dict[str, ServiceAccount] = {}

    # --- set-up, for the control API ---------------------------------------------

    def register(self, email: str) -> ServiceAccount:
        """A service account (idempotent: registering again keeps its keys)."""
        match = _EMAIL_RE.match(email)
        if match is None:
            raise ValueError(
                f"{email!r} is not a service-account email (name@project.iam.gserviceaccount.com)"
            )
        with self.lock:
            account = self.accounts.get(email)
            if account is None:
                account = ServiceAccount(email, unique_id_for(email), match.group(1), SigningKey())
                self.accounts[email] = account
            return account

    def create_key(self, email: str, token_uri: str) -> dict[str, str]:
        """A user-managed key, as the JSON key file Google lets one download once."""
        with self.lock:
            account = self.accounts.get(email)
            if account is None:
                raise KeyError(email)
            key = SigningKey()
            account.user_keys[key.kid] = key
        return {
            "type": "service_account",
            "project_id": account.project,
            "private_key_id": key.kid,
            "private_key": key.private_key_pem(),
            "client_email": account.email,
            "client_id": account.unique_id,
            "auth_uri": token_uri.rsplit("/", 1)[0] + "/o/oauth2/auth",
            "token_uri": token_uri,
            "universe_domain": "googleapis.com",
        }

    # --- what other APIs ask ------------------------------------------------------

    def public_keys(self, email: str) -> PublicKeys | None:
        """The keys a JWT from `email` may be signed with; None for an unknown account."""
        with self.lock:
            account = self.accounts.get(email)
            if account is None:
                return None
            keys: dict[str, object] = {account.system_key.kid: account.system_key.public_key}
            keys.update({kid: key.public_key for kid, key in account.user_keys.items()})
            return PublicKeys(account.email, account.unique_id, keys)

    # --- signJwt --------------------------------------------------------------------

    def sign_jwt(self, name: str, payload: Any) -> tuple[str, str]:
        """(key id, signed JWT) for `projects/-/serviceAccounts/{email}`'s `payload`."""
        email = name.rsplit("/", 1)[-1]
        with self.lock:
            account = self.accounts.get(email)
        if account is None:
            # What Google answers for an account that does not exist or that the caller
            # may not see: the same 403, so a caller cannot probe for accounts.
            raise IamError(
                403,
                f"Permission 'iam.serviceAccounts.signJwt' denied on resource (or it may not "
                f"exist): projects/-/serviceAccounts/{email}",
            )
        if not isinstance(payload, str) or not payload:
            raise IamError(400, "Invalid value at 'payload': a JSON string is required")
        try:
            claims = json.loads(payload)
        except ValueError:
            raise IamError(400, "Invalid JWT payload: not valid JSON") from None
        if not isinstance(claims, dict):
            raise IamError(400, "Invalid JWT payload: not a JSON object")
        exp = claims.get("exp")
        now = int(timeutil.now().timestamp())
        if exp is not None and (not isinstance(exp, int) or exp > now + MAX_SIGNED_LIFETIME):
            raise IamError(400, "Invalid JWT payload: exp must be at most 12 hours ahead")
        if exp is None:
            claims["exp"] = now + 3600  # Google fills in a one-hour expiry
        return account.system_key.kid, account.system_key.sign_jwt(claims)
