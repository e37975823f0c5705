"""A wrapper that keeps secret strings out of output.

KSeF tokens, access/refresh JWTs, Vault tokens and private keys travel as
:class:`Secret`; ``str``, ``repr`` and formatting show a mask, and the value is
only reachable through :meth:`Secret.reveal` at the one place that must send
or store it.
"""

from __future__ import annotations

from typing import Any, NoReturn

MASK = "***"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:  # never pickled into a file or a queue by accident
        raise TypeError("Secret values cannot be pickled")

    def __getstate__(self) -> Any:
        raise TypeError("Secret values cannot be serialised")
