"""Rule files changed while a real sidecar serves through Envoy."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from extproc.windows import Cycle, window_at
from tests.harness.processes import RedisServer
from tests.harness.rules import daily_rule_yaml
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEY = "sk-reload-0123456789"
BODY = {
    "model": "gpt-4o-mini",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hi"}],
}
USAGE = {"x-fake-prompt-tokens": "30", "x-fake-completion-tokens": "10"}


def rules_text(quota: int, extra: str = "") -> str:
    return daily_rule_yaml("carol", KEY, quota, extra)


def replace_file(path: Path, text: str) -> None:
    """Write as editors do: a temporary file renamed over the old one."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


@pytest.fixture
def reload_stack(
    redis_server: RedisServer, tmp_path: Path
) -> Iterator[tuple[Stack, Path]]:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "rules.yaml").write_text(rules_text(10_000))
    stack = Stack(redis_server).start()
    stack.watch_rules(folder)
    yield stack, folder
    stack.stop()
    stack.redis().flushall()


def call(stack: Stack) -> int:
    headers = {"authorization": f"Bearer {KEY}", **USAGE}
    with stack.http(timeout=10) as http:
        status = http.post("/v1/chat/completions", json=BODY, headers=headers)
    stack.settled()
    return status.status_code


def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def used(stack: Stack) -> int:
    window = window_at(stack.clock(), Cycle.DAY, "Asia/Shanghai")
    key = f"llmq:{{carol}}:q:daily:{window.key}"
    return int(stack.redis().hget(key, "used") or 0)


def test_good_change_applies_without_restart(reload_stack) -> None:
    """Lowering a quota in the file refuses the next call, with no restart."""
    stack, folder = reload_stack
    assert 200 == call(stack)

    replace_file(folder / "rules.yaml", rules_text(50))

    assert until(lambda: stack.rules.current().rules["daily"].quota == 50)
    assert 429 == call(stack)


def test_bad_change_is_refused_and_old_rules_keep_enforcing(reload_stack) -> None:
    """A broken file is refused as a whole, named by line; the old rules serve."""
    stack, folder = reload_stack
    before = stack.rules.revision

    replace_file(folder / "rules.yaml", rules_text(50, "\n  colour: blue"))

    assert until(lambda: stack.rules.failed_reloads == 1)
    assert before == stack.rules.revision
    assert stack.rules.last_error is not None
    assert "rules.yaml:16: unknown key 'colour' at spec.colour" == str(
        stack.rules.last_error.problems[0]
    )
    assert 200 == call(stack)  # the old quota of 10,000 still applies


def test_configmap_symlink_swap_is_picked_up(redis_server, tmp_path: Path) -> None:
    """Kubernetes' `..data` symlink swap to a new folder reloads the rules."""
    folder = tmp_path / "mounted"
    first = folder / "..2026_12_04_10_00_00.1"
    first.mkdir(parents=True)
    (first / "rules.yaml").write_text(rules_text(10_000))
    (folder / "..data").symlink_to(first.name)
    (folder / "rules.yaml").symlink_to("..data/rules.yaml")
    stack = Stack(redis_server).start()
    try:
        stack.watch_rules(folder)
        assert 200 == call(stack)

        second = folder / "..2026_12_04_10_05_00.2"
        second.mkdir()
        (second / "rules.yaml").write_text(rules_text(50))
        (folder / "..data_tmp").symlink_to(second.name)
        os.replace(folder / "..data_tmp", folder / "..data")

        assert until(lambda: stack.rules.current().rules["daily"].quota == 50)
        assert 429 == call(stack)
    finally:
        stack.stop()
        stack.redis().flushall()


def test_quota_edit_keeps_the_counter(reload_stack) -> None:
    """Raising a quota keeps what the current window has already used."""
    stack, folder = reload_stack
    assert 200 == call(stack)
    spent = used(stack)

    replace_file(folder / "rules.yaml", rules_text(20_000))
    assert until(lambda: stack.rules.current().rules["daily"].quota == 20_000)

    assert 40 == spent
    assert 40 == used(stack)
    assert 200 == call(stack)
    assert 80 == used(stack)


def test_emptied_folder_is_refused(reload_stack) -> None:
    """A folder whose files vanish (a broken mount) keeps the old rules serving."""
    stack, folder = reload_stack
    before = stack.rules.revision

    (folder / "rules.yaml").unlink()

    assert until(lambda: stack.rules.failed_reloads == 1)
    assert before == stack.rules.revision
    assert stack.rules.last_error is not None
    assert "the new rules have no consumers (the served set has 1)" in str(
        stack.rules.last_error
    )
    assert 200 == call(stack)


def test_dropping_every_limit_is_refused(reload_stack) -> None:
    """Consumers left without any quota rule is refused, not served unmetered."""
    stack, folder = reload_stack
    consumer_only = rules_text(10_000).split("---")[0]

    replace_file(folder / "rules.yaml", consumer_only)

    assert until(lambda: stack.rules.failed_reloads == 1)
    assert "no quota rules and rate limits" in str(stack.rules.last_error)
