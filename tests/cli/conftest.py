"""The CLI tests reuse the end-to-end harness: simulator + OpenBao + the CLI in-process."""

from tests.e2e.conftest import World, world

__all__ = ["World", "world"]
