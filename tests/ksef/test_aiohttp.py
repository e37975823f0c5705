"""The aiohttp transport honours HTTPS_PROXY / NO_PROXY like httpx, looked up once per origin."""

from __future__ import annotations

import httpx
import pytest
from yarl import URL

from ksefctl.ksef._aiohttp import AiohttpTransport


def test_proxies_come_from_the_environment_once_per_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    transport = AiohttpTransport(tls=True, max_connections=1, keepalive_expiry_s=1)

    proxy = transport._proxy(httpx.URL("https://api-test.ksef.mf.gov.pl/v2/auth/challenge"))
    assert proxy is not None
    assert proxy[0] == URL("http://proxy.example:3128")
    assert proxy[1] is not None and proxy[1].login == "user"
    assert transport._proxy(httpx.URL("https://internal.example/v2/tokens")) is None

    # Later requests to the same origin reuse the answer, even if the environment moves.
    monkeypatch.delenv("HTTPS_PROXY")
    again = transport._proxy(httpx.URL("https://api-test.ksef.mf.gov.pl/v2/tokens"))
    assert again == proxy
