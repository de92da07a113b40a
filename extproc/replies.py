"""Builders for the ext_proc replies the sidecar sends back to Envoy.

Header values always travel in `raw_value` (Envoy rejects a reply that sets both
`value` and `raw_value`). JSON error bodies carry their content-type, or Envoy
would send them as text/plain.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from envoy.config.core.v3.base_pb2 import HeaderValue, HeaderValueOption
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.type.v3.http_status_pb2 import HttpStatus

_OVERWRITE = HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD

# The OpenAI error `type` for each status the sidecar answers with itself; SDKs
# map the status to their exception classes and show the message.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    413: "invalid_request_error",
    429: "insufficient_quota",
    503: "service_unavailable",
}


def header_mutation(
    set_headers: Mapping[str, str] | None = None, remove: Iterable[str] = ()
) -> pb.HeaderMutation:
    options = [
        HeaderValueOption(
            header=HeaderValue(key=name, raw_value=value.encode()),
            append_action=_OVERWRITE,
        )
        for name, value in (set_headers or {}).items()
    ]
    return pb.HeaderMutation(set_headers=options, remove_headers=list(remove))


def error_body(
    status: int,
    message: str,
    code: str,
    param: str | None = None,
    error_type: str | None = None,
) -> bytes:
    """An OpenAI-style error object, the shape LLM SDKs already parse; `error_type`
    replaces the status's usual type (OpenAI's rate limits say `requests`)."""
    error = {
        "message": message,
        "type": error_type or _ERROR_TYPES.get(status, "api_error"),
        "param": param,
        "code": code,
    }
    return json.dumps({"error": error}).encode()


def immediate_error(
    status: int,
    message: str,
    code: str,
    headers: Mapping[str, str] | None = None,
    param: str | None = None,
    error_type: str | None = None,
) -> pb.ProcessingResponse:
    """Answer the client now, without calling the provider."""
    all_headers = {"content-type": "application/json", **(headers or {})}
    return pb.ProcessingResponse(
        immediate_response=pb.ImmediateResponse(
            status=HttpStatus(code=status),
            headers=header_mutation(all_headers),
            body=error_body(status, message, code, param, error_type),
            details=code,
        )
    )


def continue_request_headers(
    mutation: pb.HeaderMutation | None = None,
) -> pb.ProcessingResponse:
    return pb.ProcessingResponse(
        request_headers=pb.HeadersResponse(
            response=pb.CommonResponse(header_mutation=mutation)
        )
    )


def continue_request_body(
    new_body: bytes | None = None, mutation: pb.HeaderMutation | None = None
) -> pb.ProcessingResponse:
    common = pb.CommonResponse(header_mutation=mutation)
    if new_body is not None:
        common.body_mutation.body = new_body
    return pb.ProcessingResponse(request_body=pb.BodyResponse(response=common))


def continue_response_headers(
    mutation: pb.HeaderMutation | None = None,
) -> pb.ProcessingResponse:
    return pb.ProcessingResponse(
        response_headers=pb.HeadersResponse(
            response=pb.CommonResponse(header_mutation=mutation)
        )
    )


# The reply to almost every chunk of a streamed response: built once, since a
# stream of 200 chunks would otherwise build 200 identical messages. Nothing
# mutates a reply after it is returned.
_CONTINUE_RESPONSE_BODY = pb.ProcessingResponse(
    response_body=pb.BodyResponse(response=pb.CommonResponse())
)


def continue_response_body(new_chunk: bytes | None = None) -> pb.ProcessingResponse:
    if new_chunk is None:
        return _CONTINUE_RESPONSE_BODY
    common = pb.CommonResponse()
    common.body_mutation.body = new_chunk
    return pb.ProcessingResponse(response_body=pb.BodyResponse(response=common))


def continue_trailers(kind: str) -> pb.ProcessingResponse:
    """Trailers are not processed; a reply of the matching kind lets them pass."""
    return pb.ProcessingResponse(**{kind: pb.TrailersResponse()})
