"""OpenAI legacy Completions (`/completions`), also served by vLLM and Ollama.

The prompt is a string, a list of strings, or token ids (a list of integers, or
a list of such lists); each prompt gets `n` completions, or `best_of` when that
is larger (the server generates and bills all of them). `max_tokens` defaults
to 16 here, as the API documents. Usage has the semantics of
extproc.apis.openai_usage; a stream is sent with `stream_options.include_usage`.
"""

from __future__ import annotations

from typing import Any

from extproc.apis.base import LlmRequest
from extproc.apis.estimate import text_tokens
from extproc.apis.openai_usage import UsageReportingShape, ask_for_usage
from extproc.apis.payload import load_json_object, openai_model, positive_int
from extproc.errors import BadRequest

# The API's own default for `max_tokens`, in tokens.
DEFAULT_MAX_TOKENS = 16


def prompt_list(value: Any, param: str) -> list[str | list[int]]:
    """`value` as a list of prompts: strings or lists of token ids."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(_is_id(item) for item in value):
        return [value]
    if isinstance(value, list) and all(
        isinstance(item, str) or (isinstance(item, list) and all(map(_is_id, item)))
        for item in value
    ):
        return value
    raise BadRequest(
        f"'{param}' must be a string, a list of strings or of token ids",
        param=param,
    )


def prompt_tokens(prompts: list[str | list[int]]) -> int:
    """Estimated tokens of prompts: token ids count one each."""
    return sum(
        text_tokens(prompt) if isinstance(prompt, str) else len(prompt)
        for prompt in prompts
    )


def _is_id(item: Any) -> bool:
    return isinstance(item, int) and not isinstance(item, bool)


class Completions(UsageReportingShape):
    name = "openai.completions"

    def read_request(
        self, path: str, body: bytes, default_output_tokens: int
    ) -> LlmRequest:
        payload = load_json_object(body)
        model = openai_model(payload, path)
        prompts = prompt_list(payload.get("prompt"), "prompt")
        stream = payload.get("stream") is True
        asked = positive_int(payload, "max_tokens") or DEFAULT_MAX_TOKENS
        per_prompt = max(
            positive_int(payload, "n") or 1, positive_int(payload, "best_of") or 1
        )
        rewritten = ask_for_usage(payload) if stream else None
        return LlmRequest(
            api=self.name,
            model=model,
            stream=stream,
            prompt_tokens=prompt_tokens(prompts),
            output_allowance=asked * per_prompt * len(prompts),
            forwarded_body=rewritten,
            client_wants_usage=rewritten is None,
        )
