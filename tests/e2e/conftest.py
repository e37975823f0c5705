"""End-to-end tests use the one ``world`` fixture of tests/support/world.py (the real CLI
in-process against the simulator and OpenBao); these names keep older imports working."""

from tests.support.world import NIPS, Result, World, manifest_header

__all__ = ["NIPS", "Result", "World", "manifest_header"]
