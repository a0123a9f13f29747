"""One :class:`Secret` type for every value that must never be shown: BMC passwords, the OMAPI
key, install tokens. A leaf module (imports nothing from bmprov)."""

from __future__ import annotations

import hmac
from typing import Any, AnyStr, Generic

MASK = "********"


class Secret(Generic[AnyStr]):
    """A value that must not be printed: ``repr``/``str``/formatting show ``********``.

    Call :meth:`reveal` at the one place the value is really needed (a login, a signature).
    """

    __slots__ = ("_value",)
    _value: AnyStr

    def __init__(self, value: AnyStr) -> None:
        self._value = value

    def reveal(self) -> AnyStr:
        """The clear value. Never log, print or store it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret) or type(other._value) is not type(self._value):
            return False
        return hmac.compare_digest(other._value, self._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")

    def __bool__(self) -> bool:
        return bool(self._value)
