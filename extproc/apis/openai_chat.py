"""OpenAI Chat Completions (`/chat/completions`) and the servers that copy it.

Azure OpenAI (`/openai/deployments/{deployment}/chat/completions`), DashScope
compatible mode, vLLM and Ollama (`/v1/chat/completions`) speak the same wire
format. The token semantics are those of extproc.apis.openai_usage: `prompt_tokens`
includes cached input, `completion_tokens` includes reasoning. A streamed call
without `stream_options.include_usage` is sent upstream with it.
"""

from __future__ import annotations

import json
from typing import Any

from extproc.apis.base import LlmRequest, UsageExtractor
from extproc.apis.estimate import MESSAGE_OVERHEAD_TOKENS, content_tokens
from extproc.apis.openai_usage import ask_for_usage, openai_extractor
from extproc.apis.payload import load_json_object, openai_model, positive_int
from extproc.errors import BadRequest

# Every reply is framed by a few tokens of its own, in tokens.
REPLY_PRIMING_TOKENS = 3


class ChatCompletions:
    name = "openai.chat_completions"

    def __init__(self, strip_usage_event: bool = True) -> None:
        # Remove the usage event the sidecar asked for on the client's behalf.
        self.strip_usage_event = strip_usage_event

    def read_request(
        self, path: str, body: bytes, default_output_tokens: int
    ) -> LlmRequest:
        payload = load_json_object(body)
        model = openai_model(payload, path)
        messages = payload.get("messages")
        if not isinstance(messages, list):
            raise BadRequest("'messages' must be a list", param="messages")

        stream = payload.get("stream") is True
        asked = positive_int(payload, "max_completion_tokens", "max_tokens")
        choices = positive_int(payload, "n") or 1
        rewritten = ask_for_usage(payload) if stream else None
        return LlmRequest(
            api=self.name,
            model=model,
            stream=stream,
            prompt_tokens=self._prompt_tokens(payload, messages),
            output_allowance=(asked or default_output_tokens) * choices,
            forwarded_body=rewritten,
            client_wants_usage=rewritten is None,
        )

    def extractor(
        self, request: LlmRequest, content_type: str, *, content_encoding: str = ""
    ) -> UsageExtractor:
        strip = self.strip_usage_event and not request.client_wants_usage
        return openai_extractor(content_type, content_encoding, strip)

    @staticmethod
    def _prompt_tokens(payload: dict[str, Any], messages: list[Any]) -> int:
        tokens = REPLY_PRIMING_TOKENS
        for message in messages:
            tokens += MESSAGE_OVERHEAD_TOKENS
            if isinstance(message, dict):
                tokens += content_tokens(message.get("content"))
        tools = payload.get("tools")
        if tools:
            tokens += content_tokens(json.dumps(tools))
        return tokens
