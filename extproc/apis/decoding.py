"""Compressed response bodies, read for usage anyway.

The sidecar removes `accept-encoding` from forwarded requests, so providers
answer uncompressed; a provider that ignores this still gets its usage read.
gzip and deflate are inflated with zlib, br with the `brotli` package, one chunk
at a time and at most `SLICE_BYTES` of output per step, so a small compressed
chunk cannot blow up memory. The client still receives the compressed bytes
untouched: a compressed stream is read, never rewritten (so a usage event the
sidecar asked for is not removed from it). An encoding that cannot be read
(zstd, or a corrupt body) leaves usage unknown, and the call is charged an
estimate.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

import brotli

from extproc.apis.base import UsageExtractor
from extproc.apis.usage import Usage

# Decompressed bytes handed to the extractor per step.
SLICE_BYTES = 64 << 10

IDENTITY = frozenset({"", "identity"})


class _Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]: ...


class _ZlibDecoder:
    """gzip, zlib-wrapped deflate, or raw deflate (which some servers send)."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._inflater: zlib._Decompress | None = None
        self._head = b""  # the first bytes, until two tell the deflate flavour

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._inflater is None:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return
            self._inflater = zlib.decompressobj(self._window_bits(data))
        inflater = self._inflater
        while data:
            out = inflater.decompress(data, SLICE_BYTES)
            data = inflater.unconsumed_tail
            if out:
                yield out

    def _window_bits(self, head: bytes) -> int:
        if self._gzip:
            return 16 + zlib.MAX_WBITS
        # A zlib header: compression method 8 and a check over its two bytes.
        wrapped = head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS


class _BrotliDecoder:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        out = self._decompressor.process(data, output_buffer_limit=SLICE_BYTES)
        while True:
            if out:
                yield out
            if self._decompressor.can_accept_more_data():
                return
            out = self._decompressor.process(b"", output_buffer_limit=SLICE_BYTES)


_DECODERS: dict[str, Callable[[str], _Decoder]] = {
    "gzip": _ZlibDecoder,
    "x-gzip": _ZlibDecoder,
    "deflate": _ZlibDecoder,
    "br": lambda _: _BrotliDecoder(),
}


def decoders_for(content_encoding: str) -> list[_Decoder] | None:
    """Decoders in the order to apply them; None when one cannot be read."""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c not in IDENTITY]
    if any(c not in _DECODERS for c in codings):
        return None
    # Codings are listed in the order they were applied: undo the last first.
    return [_DECODERS[c](c) for c in reversed(codings)]


def reading_encoding(
    content_encoding: str, make: Callable[[bool], UsageExtractor]
) -> UsageExtractor:
    """An extractor for a body in `content_encoding`.

    `make(may_rewrite)` builds the plain extractor; it may rewrite the body
    only when the body is not compressed.
    """
    if content_encoding.strip().lower() in IDENTITY:
        return make(True)
    decoders = decoders_for(content_encoding)
    if decoders is None:
        return UnreadableBody()
    return DecodingExtractor(make(False), decoders)


class DecodingExtractor:
    """Decompresses each chunk for an inner extractor; forwards bytes unchanged."""

    def __init__(self, inner: UsageExtractor, decoders: list[_Decoder]) -> None:
        self._inner = inner
        self._decoders = decoders
        self._broken = False

    def feed(self, chunk: bytes) -> bytes | None:
        if self._broken:
            return None
        try:
            for piece in self._decode(chunk, 0):
                self._inner.feed(piece)
        except (zlib.error, brotli.error):
            self._broken = True  # a corrupt body: charge the estimate
        return None

    def _decode(self, data: bytes, level: int) -> Iterator[bytes]:
        if level == len(self._decoders):
            yield data
            return
        for piece in self._decoders[level].decode(data):
            yield from self._decode(piece, level + 1)

    def usage(self) -> Usage | None:
        return self._inner.usage()

    def delivered_output_tokens(self) -> int:
        return self._inner.delivered_output_tokens()


class UnreadableBody:
    """A body in an encoding the sidecar cannot read: usage stays unknown."""

    def __init__(self) -> None:
        self._bytes = 0

    def feed(self, chunk: bytes) -> bytes | None:
        self._bytes += len(chunk)
        return None

    def usage(self) -> Usage | None:
        return None

    def delivered_output_tokens(self) -> int:
        # Compressed text is about a quarter of its size, and a token is about
        # four bytes of text: one token per compressed byte.
        return self._bytes
