"""The simulator fixture moved to :mod:`tests.support.sim`; this name keeps old imports working."""

from tests.support.sim import (
    ALL_PERMISSIONS,
    OTHER_NIP,
    OWNER_NIP,
    MintedToken,
    Session,
    SimHandle,
    contract_checker,
    encrypt,
    poll_auth,
    start_sim,
    start_token_login,
)

__all__ = [
    "ALL_PERMISSIONS",
    "OTHER_NIP",
    "OWNER_NIP",
    "MintedToken",
    "Session",
    "SimHandle",
    "contract_checker",
    "encrypt",
    "poll_auth",
    "start_sim",
    "start_token_login",
]
