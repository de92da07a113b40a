"""The benchmark's own parts: what they count must be right for its numbers to be."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from bench.noop_processor import NoopProcessor
from bench.runs import changes, percentile, verdict
from bench.upstream import stream_events
from bench.wrk import parse_result


def test_wrk_result_line_gives_status_counts_by_code() -> None:
    """The Lua script's result line is read into counts keyed by integer status."""
    output = (
        "Running 1s test\n"
        'BENCH_RESULT {"requests":7,"duration_us":1000000,"status":{"200":5,"504":2},'
        '"errors":{"connect":0,"read":0,"write":0,"status":2,"timeout":0},'
        '"latency_us":{"p50":900,"p99":2000,"max":2100}}\n'
    )
    expected = {200: 5, 504: 2}
    assert expected == parse_result(output)["status"]


def test_a_run_with_one_unexpected_status_fails() -> None:
    """A single non-200 reply marks the whole run as failed."""
    assert verdict({200: 1000, 500: 1}, {}).startswith("failed")


def test_a_run_with_socket_errors_fails() -> None:
    """A wrk timeout marks the run as failed even when every status was 200."""
    assert verdict({200: 10}, {"timeout": 1}).startswith("failed")


def test_a_clean_run_is_ok() -> None:
    """Only 200 replies and no socket error make a run ok."""
    expected = "ok"
    assert expected == verdict({200: 10}, {"timeout": 0})


def test_percentile_is_nearest_rank() -> None:
    """The 50th percentile of 1..10 is 5 and the 99th is 10 (nearest rank)."""
    values = [float(v) for v in range(10, 0, -1)]
    expected = (5.0, 10.0)
    assert expected == (percentile(values, 50), percentile(values, 99))


def test_redis_deltas_leave_out_the_probes_own_info_calls() -> None:
    """Commands and reads are counted without the INFO calls that read them."""
    before = {"cpu": {}, "machine": {}, "envoy": {}, "redis": _redis(100, 50, 10)}
    after = {"cpu": {}, "machine": {}, "envoy": {}, "redis": _redis(134, 64, 14)}
    # 4 INFO calls in between: 34 - 4 commands, 14 - 4 reads.
    expected = {"total_commands_processed": 30, "total_reads_processed": 10}
    assert expected == changes(before, after)["redis"]


def _redis(commands: int, reads: int, info: int) -> dict[str, int]:
    return {
        "total_commands_processed": commands,
        "total_reads_processed": reads,
        "cmd:info": info,
    }


def test_a_canned_stream_has_the_asked_events_then_usage_and_done() -> None:
    """200 content events, one usage event and [DONE], then the last chunk."""
    events = b"".join(stream_events(200))
    expected = (202, True)
    assert expected == (events.count(b"data: "), events.endswith(b"0\r\n\r\n"))


async def test_noop_processor_answers_each_message_with_its_kind() -> None:
    """Every ext_proc message gets the empty reply of the matching kind, in order."""
    server = grpc.aio.server()
    pb_grpc.add_ExternalProcessorServicer_to_server(NoopProcessor(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    kinds = ["request_headers", "request_body", "response_headers", "response_body"]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ExternalProcessorStub(channel)
            replies = [r async for r in stub.Process(_messages(kinds))]
    finally:
        await server.stop(None)
    assert kinds == [r.WhichOneof("response") for r in replies]


async def _messages(kinds: list[str]) -> AsyncIterator[pb.ProcessingRequest]:
    for kind in kinds:
        message = pb.HttpHeaders() if kind.endswith("headers") else pb.HttpBody()
        yield pb.ProcessingRequest(**{kind: message})
