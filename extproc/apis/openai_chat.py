"""OpenAI Chat Completions (`/chat/completions`) and the servers that copy it.

Azure OpenAI (`/openai/deployments/{deployment}/chat/completions`), DashScope
compatible mode, vLLM and Ollama (`/v1/chat/completions`) speak the same wire
format. The token semantics are those of extproc.apis.openai_usage: `prompt_tokens`
includes cached input, `completion_tokens` includes reasoning. A streamed call
without `stream_options.include_usage` is sent upstream with it.
"""

from __future__ import annotations

from extproc.apis.base import LlmRequest
from extproc.apis.estimate import conversation_tokens
from extproc.apis.openai_usage import UsageReportingShape, ask_for_usage
from extproc.apis.payload import load_json_object, openai_model, positive_int
from extproc.errors import BadRequest

# Every reply is framed by a few tokens of its own, in tokens.
REPLY_PRIMING_TOKENS = 3


class ChatCompletions(UsageReportingShape):
    name = "openai.chat_completions"

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
            prompt_tokens=REPLY_PRIMING_TOKENS
            + conversation_tokens(messages, "content", tools=payload.get("tools")),
            output_allowance=(asked or default_output_tokens) * choices,
            forwarded_body=rewritten,
            client_wants_usage=rewritten is None,
        )
