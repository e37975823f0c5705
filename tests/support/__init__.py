"""What the test suite shares: the one ``sim``, ``world``, ``bao`` and limits fixtures
and the helpers more than one test module uses.

Test modules import from here, never from each other.  The fixtures are
registered for the whole suite by ``pytest_plugins`` in tests/conftest.py.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SHARED = REPO.parent / "shared"
OPENAPI = SHARED / "ksef" / "open-api.json"
