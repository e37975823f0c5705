"""An httpx transport that sends over aiohttp's connection pool.

Why: httpcore's pool re-examines every pooled connection (a ``poll`` syscall
each) whenever a request starts or ends, so with the 64+ keep-alive
connections a large run needs, most of ksefctl's CPU went into pool
bookkeeping (profile in docs/performance.md).  aiohttp's pool is O(1) per
request and its HTTP parser is in C.  httpx stays the API: event hooks,
``httpx.Response`` and the exception tree are unchanged for the rest of the
client, and exceptions are mapped to httpx's here so ``transport.py`` still
tells "never sent" from "maybe sent".
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import httpx
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

# (proxy, proxy auth) for requests to one origin; None: connect directly.
Proxy = tuple[URL, aiohttp.BasicAuth | None] | None


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        tls: ssl.SSLContext | bool,
        max_connections: int,
        keepalive_expiry_s: float,
    ) -> None:
        self._tls = tls
        self._max_connections = max_connections
        self._keepalive_expiry_s = keepalive_expiry_s
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str, int | None], Proxy] = {}

    def _proxy(self, url: httpx.URL) -> Proxy:
        # HTTPS_PROXY / NO_PROXY are honoured as httpx would, but looked up once
        # per origin: aiohttp's trust_env looks them up (and reads ~/.netrc) in
        # a thread for every request, which cost more CPU than the request.
        origin = (url.scheme, url.host, url.port)
        if origin not in self._proxies:
            try:
                self._proxies[origin] = get_env_proxy_for_url(URL(str(url)))
            except LookupError:
                self._proxies[origin] = None
        return self._proxies[origin]

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: aiohttp needs a running event loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=self._max_connections,
                keepalive_timeout=self._keepalive_expiry_s,
                ssl=self._tls,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # httpx already set every header it wants; add none of aiohttp's own.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                auto_decompress=True,
                # Proxies come from _proxy(); never credentials from ~/.netrc
                # (with our Authorization header aiohttp would refuse them anyway).
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        body = await request.aread()
        proxy = self._proxy(request.url)
        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
                compress=None,
                proxy=proxy[0] if proxy else None,
                proxy_auth=proxy[1] if proxy else None,
            ) as answer:
                content = await answer.read()
                headers = [(k, v) for k, v in answer.raw_headers]
                status = answer.status
        except aiohttp.ClientConnectorError as error:
            # The connection never opened: nothing reached KSeF.  A TLS failure
            # stays in the chain, where transport.transport_failure looks for it.
            raise httpx.ConnectError(_describe(error), request=request) from error
        except aiohttp.ConnectionTimeoutError as error:
            raise httpx.ConnectTimeout(_describe(error), request=request) from error
        except aiohttp.ServerTimeoutError as error:
            raise httpx.ReadTimeout(_describe(error), request=request) from error
        except TimeoutError as error:
            raise httpx.ReadTimeout("timed out", request=request) from error
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as error:
            raise httpx.RemoteProtocolError(_describe(error), request=request) from error
        except aiohttp.ClientOSError as error:
            raise httpx.ReadError(_describe(error), request=request) from error
        except aiohttp.ClientError as error:
            raise httpx.RemoteProtocolError(_describe(error), request=request) from error
        # The body is already decoded: drop the header that would make httpx decode it again.
        headers = [(k, v) for k, v in headers if k.lower() != b"content-encoding"]
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            # Lets the connector's SSL transports finish closing before the loop stops.
            await asyncio.sleep(0)


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
