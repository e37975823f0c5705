"""The OpenBao fixture is a real Vault-API server: one KV v2 round trip proves it."""

from __future__ import annotations

import hvac

from tests.conftest import Bao


def test_kv_v2_round_trip(bao: Bao) -> None:
    client = hvac.Client(url=bao.address, token=bao.token)
    client.secrets.kv.v2.create_or_update_secret(
        path="ksef/test/5265877635/erp", secret={"token": "x"}, mount_point=bao.mount, cas=0
    )
    read = client.secrets.kv.v2.read_secret_version(
        path="ksef/test/5265877635/erp", mount_point=bao.mount, raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"token": "x"}
    assert read["data"]["metadata"]["version"] == 1
