"""The host's webhook over HTTPS (httpx), behind the `HostWebhook` port.

One `httpx.AsyncClient` per worker, created on the first post and reused, so connections to the host
are kept alive across invocations. One try per post: retries and backoff belong to the delivery service
(`shared/service/deliveries.py`), so that they are not multiplied here. Redirects are not followed (a
signed body goes only where it was configured to go). A failure's reason is short and safe to log and
store: the status code or the error's class, never a body. An answer's body is read only to give the
connection back to the pool, and dropped.
"""

from __future__ import annotations

import asyncio

import httpx

from shared.service.errors import DeliveryFailed

USER_AGENT = "m365-calendar-connector"
MAX_DRAINED_BYTES = 64 * 1024  # an answer's body is read (so the connection can be reused) up to this


class HttpHostWebhook:
    def __init__(
        self,
        timeout_seconds: float = 10.0,
        *,
        ca_bundle: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`timeout_seconds` bounds a whole post (connect, send, answer); `ca_bundle` trusts a local CA;
        `transport` is the I/O seam for tests (`httpx.MockTransport`)."""
        self._timeout = timeout_seconds
        self._verify: str | bool = ca_bundle or True
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # no await between the check and the assignment: one client per worker
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                verify=self._verify,
                transport=self._transport,
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        client = self._http()
        try:
            async with (
                asyncio.timeout(self._timeout),
                client.stream("POST", url, content=body, headers=headers) as response,
            ):
                status = response.status_code
                await _drain(response)
        except (TimeoutError, httpx.TimeoutException) as error:
            raise DeliveryFailed(f"timeout after {self._timeout:g} s ({type(error).__name__})") from error
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
            raise DeliveryFailed(f"unusable webhook URL ({type(error).__name__})", retryable=False) from error
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"no answer ({type(error).__name__})") from error
        if not 200 <= status < 300:
            raise DeliveryFailed(f"HTTP {status}", status=status)
        return status

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


async def _drain(response: httpx.Response) -> None:
    """Read and drop a small answer body, so the connection goes back to the pool; a larger one is cut
    off (and its connection closed) rather than held in memory."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > MAX_DRAINED_BYTES:
            break
