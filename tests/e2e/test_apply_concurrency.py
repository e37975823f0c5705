"""A context's tokens are created side by side: activation waits overlap, not add up."""

from __future__ import annotations

from datetime import datetime

from tests.e2e.conftest import NIPS, World

THREE_TOKENS = """\
contexts:
  - nip: "5265877635"
    tokens:
      - name: erp
        permissions: [InvoiceRead, InvoiceWrite]
      - name: reader
        permissions: [InvoiceRead]
      - name: bi
        permissions: [InvoiceRead]
"""
ACTIVATION_S = 1.5


def test_three_tokens_of_one_context_are_created_before_any_is_active(world: World) -> None:
    # Each new token stays Pending this long: one after another, the three
    # creations would lie at least 2 × ACTIVATION_S apart.
    world.sim.set_faults(activation_delay_s=ACTIVATION_S)
    manifest = world.manifest(THREE_TOKENS)

    result = world.ksefctl("apply", "-f", str(manifest), "--auto-approve")

    assert result.code == 0, result
    tokens = world.tokens(NIPS[0], statuses=("Active",))
    assert len(tokens) == 3
    created = sorted(datetime.fromisoformat(t["dateCreated"]) for t in tokens)
    assert (created[-1] - created[0]).total_seconds() < ACTIVATION_S, created
    for name in ("erp", "reader", "bi"):
        assert world.secret(NIPS[0], name)["metadata"]["custom_metadata"]["activatedAt"]
