"""Vault / OpenBao (KV v2): token secrets, login material and owner locks.

``VaultStore`` is the async facade; ``VaultConfig`` and ``VaultLogin`` say how
to connect and log in; every failure is a :class:`VaultError`.
"""

from ksefctl.vault.config import VaultConfig, VaultConfigError, VaultLogin
from ksefctl.vault.errors import (
    CasConflict,
    LockLost,
    LockTimeout,
    VaultError,
    VaultLoginFailed,
    VaultNotFound,
    VaultPermissionDenied,
    VaultUnavailable,
)
from ksefctl.vault.lock import OwnerLock
from ksefctl.vault.login import LoginRequest, build_login_request
from ksefctl.vault.store import MANAGED_BY, PartialWrite, VaultStore, template_prefix

__all__ = [
    "MANAGED_BY",
    "CasConflict",
    "LockLost",
    "LockTimeout",
    "LoginRequest",
    "OwnerLock",
    "PartialWrite",
    "VaultConfig",
    "VaultConfigError",
    "VaultError",
    "VaultLogin",
    "VaultLoginFailed",
    "VaultNotFound",
    "VaultPermissionDenied",
    "VaultStore",
    "VaultUnavailable",
    "build_login_request",
    "template_prefix",
]
