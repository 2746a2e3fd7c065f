"""A secret that stays on this computer: the operating system's credential store, through ``keyring``.

On Windows that is the Credential Manager (protected by DPAPI under the Windows account); on
Linux the Secret Service (GNOME Keyring, KWallet); on macOS the Keychain. The key slots mix this
secret into every PIN's key, so a copy of the data directory alone (a USB stick, a backup, a
disk taken out of the PC) is not enough to guess PINs offline. Where no such store is usable
the key slots work from the file alone and the admin is warned (``docs/security.md``).

``keyring`` is imported only when a secret is needed: the unlock screen must appear at once.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os

from schema.errors import UserError

log = logging.getLogger(__name__)

SERVICE = "station-keyslots"
SIZE = 32


class DeviceSecretError(UserError):
    """The credential store exists but refused or failed."""


def _backend():
    """The usable keyring backend, or None (the ``fail``/``null`` backends and errors mean none)."""
    try:
        import keyring
        from keyring.backends import fail, null

        backend = keyring.get_keyring()
    except Exception as exc:  # noqa: BLE001 - a broken store is "no store", reported to the admin
        log.warning("credential store unusable: %s", type(exc).__name__)
        return None
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return None
    try:
        if backend.priority <= 0:
            return None
    except Exception:  # noqa: BLE001 - a backend whose priority raises is not viable
        return None
    return backend


def store_name() -> str | None:
    """A short name of the credential store in use (for the admin screen), or None."""
    backend = _backend()
    if backend is None:
        return None
    names = {
        "keyring.backends.Windows": "Windows 凭据管理器",
        "keyring.backends.SecretService": "系统密钥环（Secret Service）",
        "keyring.backends.libsecret": "系统密钥环（libsecret）",
        "keyring.backends.macOS": "macOS 钥匙串",
    }
    return names.get(type(backend).__module__, f"系统密钥库（{type(backend).__name__}）")


def load(name: str) -> bytes | None:
    """The secret stored under ``name``; None if there is no store or no such secret."""
    backend = _backend()
    if backend is None:
        return None
    try:
        text = backend.get_password(SERVICE, name)
    except Exception as exc:  # noqa: BLE001
        raise DeviceSecretError(f"无法读取系统凭据（{type(exc).__name__}），请确认已用平时的 Windows 账户登录") from None
    if text is None:
        return None
    try:
        secret = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return secret if len(secret) == SIZE else None


def load_or_create(name: str) -> bytes | None:
    """The secret under ``name``, created if absent; None when this computer has no usable store.

    An existing secret is never replaced: slots already bound to it would no longer open.
    """
    try:
        existing = load(name)
    except DeviceSecretError:
        return None
    if existing is not None:
        return existing
    backend = _backend()
    if backend is None:
        return None
    secret = os.urandom(SIZE)
    try:
        backend.set_password(SERVICE, name, base64.b64encode(secret).decode("ascii"))
        stored = load(name)
    except Exception as exc:  # noqa: BLE001 - fall back to file-only, with the admin warned
        log.warning("could not store the device secret: %s", type(exc).__name__)
        return None
    return stored if stored == secret else None
