"""The Vault exception tree, and the one place aiohttp/hvac errors are mapped into it.

Messages name the Vault address, the KV path and the operation — never a
Vault token, a secret value or a response body (a KV error body may echo
request data).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from urllib.parse import urlsplit

import aiohttp
import hvac.exceptions

from ksefctl.errors import KsefctlError


class VaultError(KsefctlError):
    """Vault refused or failed an operation."""


class VaultUnavailable(VaultError):
    """Vault could not be reached, timed out, or is sealed / in standby."""


class VaultSealed(VaultUnavailable):
    """Vault answered, but is sealed, in standby or behind a failing gateway (503/502)."""


class VaultPermissionDenied(VaultError):
    """The token's policies do not allow this operation on this path (HTTP 403)."""


class CasConflict(VaultError):
    """A check-and-set write lost: someone else wrote the path since it was read."""


class VaultNotFound(VaultError):
    """The path holds no (current, undeleted) secret."""


class VaultLoginFailed(VaultError):
    """Logging into Vault failed, or there is no credential to log in with."""


class LockTimeout(VaultError):
    """Another process held the owner's lease lock for longer than we were willing to wait."""

    def __init__(self, owner: str, holder: str, expires: datetime | None) -> None:
        until = expires.isoformat(timespec="seconds") if expires else "unknown"
        super().__init__(
            f"owner {owner!r} is locked by {holder!r} until {until}; "
            "another ksefctl run for this owner is in progress"
        )
        self.owner = owner
        self.holder = holder
        self.expires = expires


class LockLost(VaultError):
    """Our lease lock was taken over (it expired before we renewed it)."""


class NotAVaultServer(VaultError):
    """VAULT_ADDR answers, but not as Vault does (a web portal, a proxy's page, another service)."""

    def __init__(self, address: str, answer: str) -> None:
        super().__init__(
            f"VAULT_ADDR ({host_port(address)}) is not a Vault server: {answer} "
            "instead of Vault's health document; check VAULT_ADDR"
        )


class VaultTokenRefused(VaultError):
    """Vault does not accept the token itself: it is wrong, expired or revoked."""

    def __init__(self, address: str, source: str) -> None:
        super().__init__(
            f"Vault at {host_port(address)} refused the token from {source} itself "
            "(auth/token/lookup-self): it is wrong, expired or revoked"
        )


def host_port(address: str) -> str:
    """``host:port`` of a Vault address, with the scheme's default port filled in."""
    parts = urlsplit(address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname or address}:{port}"


def _reason(error: hvac.exceptions.VaultError) -> str:
    # Vault's ``errors`` are short server-side sentences; the body (``text``/``json``)
    # is never used because a KV response may carry data.
    errors = [e for e in (error.errors or []) if isinstance(e, str) and e]
    text = "; ".join(errors)[:200]
    return text or type(error).__name__


@contextmanager
def mapped_errors(
    address: str, operation: str, path: str, *, login: bool = False
) -> Iterator[None]:
    """Translate aiohttp exceptions and hvac's (from ``raise_for_error``) into :class:`VaultError`.

    ``operation`` is a verb phrase ("read", "write", "list"…), ``path`` the
    ``mount/path`` it was applied to; both end up in the one-line message.
    """
    where = host_port(address)
    try:
        yield
    except VaultError:
        raise
    except (aiohttp.ServerTimeoutError, TimeoutError):
        raise VaultUnavailable(f"Vault at {where} timed out ({operation} {path})") from None
    except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError):
        raise VaultUnavailable(
            f"TLS handshake with Vault at {where} failed; check VAULT_CACERT"
        ) from None
    except (
        aiohttp.ClientConnectorError,
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientOSError,
    ):
        raise VaultUnavailable(
            f"cannot reach Vault at {where} (connection refused or dropped); is VAULT_ADDR right?"
        ) from None
    except aiohttp.ClientError as error:
        raise VaultUnavailable(
            f"request to Vault at {where} failed ({type(error).__name__})"
        ) from None
    except (hvac.exceptions.VaultDown, hvac.exceptions.BadGateway) as error:
        raise VaultSealed(f"Vault at {where} is sealed or unavailable ({_reason(error)})") from None
    except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as error:
        if login:
            raise VaultLoginFailed(
                f"Vault login at {path} was refused ({_reason(error)})"
            ) from None
        raise VaultPermissionDenied(
            f"Vault denied {operation} on {path}: the token lacks that capability, "
            "or it is invalid or expired"
        ) from None
    except hvac.exceptions.InvalidPath:
        if login:
            raise VaultLoginFailed(
                f"Vault has no auth method at {path}; is it enabled and is the mount right?"
            ) from None
        raise VaultNotFound(f"no secret at {path} in Vault at {where}") from None
    except hvac.exceptions.InvalidRequest as error:
        reason = _reason(error)
        if "check-and-set" in reason:
            raise CasConflict(
                f"{path} changed in Vault while ksefctl was writing it (check-and-set); "
                "another writer got there first — re-run to observe the new state"
            ) from None
        if login:
            raise VaultLoginFailed(f"Vault login at {path} failed ({reason})") from None
        raise VaultError(f"Vault rejected {operation} on {path} ({reason})") from None
    except hvac.exceptions.RateLimitExceeded:
        raise VaultUnavailable(f"Vault at {where} is rate limiting ({operation} {path})") from None
    except hvac.exceptions.VaultError as error:
        kind = VaultLoginFailed if login else VaultError
        raise kind(f"Vault failed {operation} on {path} ({_reason(error)})") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        # Not Vault's API at all (an HTML portal, a proxy's page, a list where a map was
        # due): say so in one line instead of crashing on the shape.
        raise VaultError(
            f"unexpected answer from Vault at {where} to {operation} {path} "
            f"({type(error).__name__}); is VAULT_ADDR a Vault server?"
        ) from None
