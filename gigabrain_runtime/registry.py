"""Explicit name -> object registries with a "did you mean" on unknown names.

Presets, embodiments and backends are looked up by name from user input (CLI flags, launch
arguments, manifests). A bare KeyError there is useless to a roboticist at a terminal, so every
lookup goes through :class:`Registry`, which raises a ValueError naming the field, the bad value,
the closest known names and the full list.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping from names to entries, filled explicitly (never at import side effect)."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if not name or not isinstance(name, str):
            raise ValueError(f"{self._kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self._kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(entry: T) -> T:
            return self.register(name, entry)

        return wrap

    def get(self, name: str, *, field: str | None = None) -> T:
        """Return the entry for ``name`` or raise ValueError with suggestions."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(self.unknown_message(name, field=field)) from None

    def unknown_message(self, name: object, *, field: str | None = None) -> str:
        known = list(self._entries)
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        where = f"{field}: " if field else ""
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"{where}unknown {self._kind} {name!r}{hint} (known: {', '.join(known)})"

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
