"""Reading request bodies and paths: the checks that every API module shares."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from extproc.errors import BadRequest

# Azure OpenAI names the deployment in the path; the body may carry no model.
_DEPLOYMENT = re.compile(r"/openai/deployments/([^/?]+)/")


# The largest count (tokens, choices) a request may ask for: the 32-bit limit
# that the providers' own APIs use.
MAX_COUNT = 2**31 - 1


def load_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest naming what is wrong."""
    if not body.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        # JSON parsers disagree on a repeated key (first or last wins): a body
        # naming `model` or `stream` twice, however spelled (`mod\u0065l`), could
        # be metered as one thing and served as another, so none is accepted.
        parsed = json.loads(body, object_pairs_hook=_refuse_repeated_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, RepeatedKeys):
            raise BadRequest(str(exc)) from None
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise BadRequest("the request body must be a JSON object")
    return parsed


class RepeatedKeys(ValueError):
    """A JSON object in the body names one key twice."""


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    built = dict(pairs)
    if len(built) != len(pairs):
        names = [name for name, _ in pairs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise RepeatedKeys(f"the request body repeats the key(s) {', '.join(repeated)}")
    return built


def positive_int(payload: dict[str, Any], *names: str) -> int | None:
    """The first of `names` present in `payload`; BadRequest unless it is >= 1."""
    for name in names:
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(f"'{name}' must be a positive integer", param=name)
        if value > MAX_COUNT:
            raise BadRequest(f"'{name}' must be at most {MAX_COUNT}", param=name)
        return value
    return None


def deployment_in_path(path: str) -> str | None:
    """The Azure OpenAI deployment a path names, or None."""
    found = _DEPLOYMENT.search(path.split("?", 1)[0] + "/")
    return unquote(found.group(1)) if found else None


def openai_model(payload: dict[str, Any], path: str) -> str:
    """The body's `model`, else the path's Azure deployment; BadRequest if neither."""
    model = payload.get("model")
    if isinstance(model, str) and model:
        return model
    deployment = deployment_in_path(path)
    if model is None and deployment:
        return deployment
    raise BadRequest("'model' is required and must be a string", param="model")
