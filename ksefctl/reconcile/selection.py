"""Narrowing the desired state to some contexts: ``--nip`` and ``--shard K/N``.

Sharding hashes the context identifier, so a context always lands on the same
runner however the manifest is reordered or grows; one context is never split
across runners (KSeF counts limits per context and IP, and treats one context
spread over many IPs as suspicious).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from ksefctl.errors import UsageError
from ksefctl.manifest.model import ContextId, Desired


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as CI matrices count
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
        if not match:
            raise UsageError(f"--shard must look like K/N (e.g. 2/8), not {text!r}")
        index, count = int(match[1]), int(match[2])
        if count < 1 or not 1 <= index <= count:
            raise UsageError(f"--shard {text}: K must be between 1 and N")
        return cls(index, count)

    def owns(self, context: ContextId) -> bool:
        digest = hashlib.sha256(str(context).encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1


def selector(nips: Collection[str] = (), shard: Shard | None = None) -> Callable[[ContextId], bool]:
    """Whether a context is in this run: ``--nip`` matches its NIP or InternalId, and its shard."""
    wanted = frozenset(nips)

    def keep(context: ContextId) -> bool:
        if wanted and context.nip not in wanted and context.value not in wanted:
            return False
        return shard is None or shard.owns(context)

    return keep


def select(desired: Desired, nips: Collection[str] = (), shard: Shard | None = None) -> Desired:
    """The part of ``desired`` this run is about."""
    keep = selector(nips, shard)
    policies = tuple(
        replace(p, contexts=tuple(c for c in p.contexts if keep(c.context)))
        for p in desired.policies
    )
    return Desired(policies=policies)
