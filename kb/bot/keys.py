"""The bot's keys: the public key a web page carries and the admin token, and the app's password."""

from __future__ import annotations

import hmac
import secrets

from kb.bot.base import ADMIN_PREFIX, PUBLIC_PREFIX, RecordsBase, _hash, _now, _scrypt
from kb.errors import BadInput


class Keys(RecordsBase):
    """The bot's keys: the public key a web page carries and the admin token, and the app's password."""

    def ensure_keys(self) -> str | None:
        """Make the keys on first start. Returns the new admin token (to show once), else None."""
        with self.db.transaction():  # one worker makes them when several start together
            if self.public_key() is None:
                self._set_key("public", PUBLIC_PREFIX + secrets.token_urlsafe(18))
            if self._one("SELECT 1 FROM bot_keys WHERE name = 'admin'") is None:
                return self.rotate_admin_token()
        return None

    def public_key(self) -> str | None:
        row = self._one("SELECT value FROM bot_keys WHERE name = 'public'")
        return row[0] if row else None

    def rotate_public_key(self) -> str:
        """A new public key; the old one stops working at once (update the site's script tag)."""
        key = PUBLIC_PREFIX + secrets.token_urlsafe(18)
        self._set_key("public", key)
        return key

    def rotate_admin_token(self) -> str:
        """A new admin token, returned once; only its hash is kept."""
        token = ADMIN_PREFIX + secrets.token_urlsafe(24)
        self._set_key("admin", _hash(token))
        return token

    def is_public_key(self, key: str | None) -> bool:
        stored = self.public_key()
        return bool(key and stored and hmac.compare_digest(key.encode(), stored.encode()))

    def is_admin_token(self, token: str | None) -> bool:
        row = self._one("SELECT value FROM bot_keys WHERE name = 'admin'")
        return bool(token and row and hmac.compare_digest(_hash(token), row[0]))

    def set_app_password(self, password: str) -> None:
        """The password the app asks for when it is reachable beyond this computer (besides the
        admin token). Kept as a salted scrypt hash."""
        if len(password) < 8:
            raise BadInput("Choose an app password of at least 8 characters.")
        salt = secrets.token_bytes(16)
        self._set_key("app_password", f"{salt.hex()}:{_scrypt(password, salt)}")

    def opens_app(self, password: str | None) -> bool:
        """Whether `password` opens the app: the admin token, or the app password."""
        if not password:
            return False
        if self.is_admin_token(password):
            return True
        row = self._one("SELECT value FROM bot_keys WHERE name = 'app_password'")
        if row is None:
            return False
        salt, digest = row[0].split(":", 1)
        return hmac.compare_digest(_scrypt(password, bytes.fromhex(salt)), digest)

    def _set_key(self, name: str, value: str) -> None:
        self._write("INSERT INTO bot_keys(name, value, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
                    "SET value = excluded.value, created_at = excluded.created_at", (name, value, _now()))
