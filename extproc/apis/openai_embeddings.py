"""OpenAI Embeddings (`/embeddings`), also served by Azure, vLLM and Ollama.

The input is a string, a list of strings, or token ids. The reply's usage has
`prompt_tokens` and `total_tokens` only: an embedding produces no output tokens,
so nothing is allowed for output at admission.
"""

from __future__ import annotations

from extproc.apis.base import LlmRequest, UsageExtractor
from extproc.apis.openai_completions import prompt_list, prompt_tokens
from extproc.apis.openai_usage import openai_extractor
from extproc.apis.payload import load_json_object, openai_model


class Embeddings:
    name = "openai.embeddings"

    def read_request(
        self, path: str, body: bytes, default_output_tokens: int
    ) -> LlmRequest:
        payload = load_json_object(body)
        return LlmRequest(
            api=self.name,
            model=openai_model(payload, path),
            stream=False,
            prompt_tokens=prompt_tokens(prompt_list(payload.get("input"), "input")),
            output_allowance=0,
        )

    def extractor(
        self, request: LlmRequest, content_type: str, *, content_encoding: str = ""
    ) -> UsageExtractor:
        # Vectors are not tokens: a reply without usage costs its input alone.
        return openai_extractor(
            content_type, content_encoding, False, bytes_per_output_token=0
        )
