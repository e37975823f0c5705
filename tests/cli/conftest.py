"""The CLI tests use the one ``world`` fixture of tests/support/world.py: simulator +
OpenBao + the CLI in-process."""

from tests.support.world import World

__all__ = ["World"]
