"""Vault / OpenBao (KV v2): token secrets, login material and owner locks.

``VaultClient`` is the one asynchronous KV v2 client; ``VaultStore`` (token
secrets, login material), ``OwnerLock`` and the session cache are built on it.
``VaultConfig`` and ``VaultLogin`` say how to connect and log in; every
failure is a :class:`VaultError`.
"""

from ksefctl.vault.client import VaultClient
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
from ksefctl.vault.kv import KvMetadata, KvVersion, KvWritten
from ksefctl.vault.lock import OwnerLock
from ksefctl.vault.login import LoginRequest, build_login_request
from ksefctl.vault.store import (
    MANAGED_BY,
    PartialWrite,
    TokenSecretState,
    VaultStore,
    template_prefix,
)

__all__ = [
    "MANAGED_BY",
    "CasConflict",
    "KvMetadata",
    "KvVersion",
    "KvWritten",
    "LockLost",
    "LockTimeout",
    "LoginRequest",
    "OwnerLock",
    "PartialWrite",
    "TokenSecretState",
    "VaultClient",
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
