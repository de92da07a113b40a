"""Exact usage from every recorded-shape fixture, however its bytes are split."""

from __future__ import annotations

import gzip
import itertools
import zlib

import brotli
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.apis.cases import CASES, STRIPPABLE, Case, feed_all

_IDS = [case.fixture for case in CASES]


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    """`body` cut at the given offsets (any order, duplicates allowed)."""
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


def without_usage_event(body: bytes) -> bytes:
    """The stream with its usage-only event (empty `choices`) removed."""
    events = body.split(b"\n\n")
    kept = [e for e in events if not (b'"choices":[]' in e and b'"usage":{' in e)]
    return b"\n\n".join(kept)


@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_fixture_usage_is_exact(case: Case) -> None:
    """Each fixture's usage normalizes to the provider's documented numbers."""
    extractor = case.extractor()
    forwarded = feed_all(extractor, [case.body])
    assert case.expected == extractor.usage()
    assert case.body == forwarded


@pytest.mark.parametrize("case", CASES, ids=_IDS)
@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_any_split_gives_the_same_usage(case: Case, cuts: list[int]) -> None:
    """Cutting a response into chunks anywhere changes neither usage nor bytes."""
    extractor = case.extractor()
    forwarded = feed_all(extractor, split(case.body, cuts))
    assert case.expected == extractor.usage()
    assert case.body == forwarded


@pytest.mark.parametrize("case", STRIPPABLE, ids=[c.fixture for c in STRIPPABLE])
@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=60))
def test_stripping_removes_only_the_usage_event(case: Case, cuts: list[int]) -> None:
    """A client that did not ask for usage gets every byte but the usage event."""
    extractor = case.extractor(client_wants_usage=False)
    forwarded = feed_all(extractor, split(case.body, cuts))
    assert case.expected == extractor.usage()
    assert without_usage_event(case.body) == forwarded
    assert forwarded.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("case", STRIPPABLE, ids=[c.fixture for c in STRIPPABLE])
@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=60))
def test_stripping_with_crlf_lines_is_split_proof(case: Case, cuts: list[int]) -> None:
    """With CRLF line ends, a CR and its LF split apart still strip identically."""
    body = case.body.replace(b"\n", b"\r\n")
    whole = feed_all(case.extractor(client_wants_usage=False), [body])
    extractor = case.extractor(client_wants_usage=False)
    assert whole == feed_all(extractor, split(body, cuts))
    assert without_usage_event(case.body).replace(b"\n", b"\r\n") == whole
    assert case.expected == extractor.usage()


def _compress(encoding: str, body: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "raw-deflate":
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return packer.compress(body) + packer.flush()
    return bytes(brotli.compress(body))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "br"])
@pytest.mark.parametrize("case", CASES, ids=_IDS)
@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_compressed_replies_are_read(
    case: Case, encoding: str, cuts: list[int]
) -> None:
    """A provider that compresses anyway still has its usage read, bytes untouched."""
    body = _compress(encoding, case.body)
    header = "deflate" if encoding == "raw-deflate" else encoding
    extractor = case.extractor(client_wants_usage=False, content_encoding=header)
    assert body == feed_all(extractor, split(body, cuts))
    assert case.expected == extractor.usage()


def test_unreadable_encoding_leaves_usage_unknown() -> None:
    """A body in an encoding the sidecar cannot read yields no usage, only bytes."""
    case = CASES[0]
    extractor = case.extractor(content_encoding="zstd")
    assert case.body == feed_all(extractor, [case.body])
    assert None is extractor.usage()
    assert len(case.body) == extractor.delivered_output_tokens()


def test_corrupt_gzip_leaves_usage_unknown() -> None:
    """A corrupt compressed body is forwarded as is and its usage left unknown."""
    case = CASES[0]
    extractor = case.extractor(content_encoding="gzip")
    assert b"not gzip at all" == feed_all(extractor, [b"not gzip at all"])
    assert None is extractor.usage()
