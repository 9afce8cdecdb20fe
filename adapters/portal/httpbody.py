"""Reading an HTTP answer with a size cap: a portal (or whatever answers in its place) cannot make us buffer GBs."""

from __future__ import annotations

import aiohttp


async def read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes | None:
    """The whole body, or None as soon as it exceeds ``max_bytes`` (the rest is not read)."""
    if response.content_length is not None and response.content_length > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
