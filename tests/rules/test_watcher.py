"""RulesWatcher against real files: the ways rules folders change in practice."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import structlog

from extproc.rules.loader import load_rules
from extproc.rules.model import RuleSet
from extproc.rules.source import RuleSource
from extproc.rules.watcher import RulesWatcher

GOOD = Path(__file__).parent / "good"
CONSUMERS = (GOOD / "consumers.yaml").read_text()
QUOTAS = (GOOD / "quotas.yml").read_text()
RAISED_QUOTAS = QUOTAS.replace("quota: 2000000", "quota: 3000000")
# Long enough that only file events, not the re-scan, can explain a reload.
NO_RESCAN_S = 3600.0


def good_folder(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "consumers.yaml").write_text(CONSUMERS)
    (folder / "quotas.yml").write_text(QUOTAS)
    return folder


@asynccontextmanager
async def watching(watcher: RulesWatcher) -> AsyncIterator[None]:
    task = asyncio.create_task(watcher.run())
    await asyncio.wait_for(watcher.ready.wait(), 5)
    try:
        yield
    finally:
        watcher.stop()
        await asyncio.wait_for(task, 10)


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Waits until `condition` holds; the timeout only bounds a failing test."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def serves_folder(source: RuleSource, folder: Path) -> None:
    """Waits until `source` serves the revision that `folder` holds now."""
    expected = load_rules(folder).revision
    await eventually(lambda: source.revision == expected)


def assert_raised(source: RuleSource) -> None:
    """The served set is RAISED_QUOTAS: gpt4-weekly has 3,000,000 tokens."""
    expected = 3_000_000
    assert expected == source.current().rules["gpt4-weekly"].quota


def watched_source(folder: Path, **options: float) -> tuple[RuleSource, RulesWatcher]:
    source = RuleSource.from_folder(folder)
    watcher = RulesWatcher(
        folder,
        source,
        debounce_ms=int(options.get("debounce_ms", 50)),
        rescan_interval_s=options.get("rescan_interval_s", NO_RESCAN_S),
    )
    return source, watcher


async def test_editor_write_to_temp_and_rename(tmp_path: Path) -> None:
    """A file replaced by renaming a freshly written temporary file is reloaded."""
    folder = good_folder(tmp_path / "rules")
    source, watcher = watched_source(folder)

    async with watching(watcher):
        temporary = folder / ".quotas.yml.tmp"
        temporary.write_text(RAISED_QUOTAS)
        os.replace(temporary, folder / "quotas.yml")
        await serves_folder(source, folder)

    assert_raised(source)


async def test_delete_and_recreate(tmp_path: Path) -> None:
    """Deleting a file and creating it again are two changes, each one seen:
    the deletion (every quota gone) is refused, the re-creation served."""
    folder = good_folder(tmp_path / "rules")
    source, watcher = watched_source(folder)
    served = source.current().rules

    async with watching(watcher):
        (folder / "quotas.yml").unlink()
        await eventually(lambda: source.failed_reloads == 1)
        rules_while_deleted = source.current().rules
        (folder / "quotas.yml").write_text(RAISED_QUOTAS)
        await serves_folder(source, folder)

    expected = (served, 3_000_000)
    found = (rules_while_deleted, source.current().rules["gpt4-weekly"].quota)
    assert expected == found


def git(folder: Path, *args: str) -> None:
    identity = ["-c", "user.name=Rules Test", "-c", "user.email=rules@example.test"]
    subprocess.run(
        ["git", *identity, *args], cwd=folder, check=True, capture_output=True
    )


def split_into_files(folder: Path, count: int) -> None:
    """Rewrites the good set as one consumer file per consumer plus `count` rules."""
    for path in folder.glob("*.y*ml"):
        path.unlink()
    for index, doc in enumerate(CONSUMERS.split("---\n")):
        (folder / f"consumer-{index}.yaml").write_text(doc)
    for index in range(count):
        rule = RAISED_QUOTAS.split("---\n")[0].replace(
            "name: platform-daily", f"name: extra-{index}"
        )
        (folder / f"rule-{index}.yml").write_text(rule)


async def test_git_checkout_of_many_files(tmp_path: Path) -> None:
    """A checkout that replaces dozens of files at once ends in its revision."""
    folder = good_folder(tmp_path / "rules")
    git(folder, "init", "-q", "-b", "main")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", "two files")
    git(folder, "checkout", "-q", "-b", "split")
    split_into_files(folder, 40)
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "many files")
    split_revision = load_rules(folder).revision
    git(folder, "checkout", "-q", "main")
    source, watcher = watched_source(folder)

    async with watching(watcher):
        git(folder, "checkout", "-q", "split")
        await eventually(lambda: source.revision == split_revision)

    expected = (40, 0)
    assert expected == (len(source.current().rules), source.failed_reloads)


def configmap_version(folder: Path, stamp: str, quotas: str) -> None:
    """Writes a ConfigMap volume version the way the kubelet does.

    Files go into a new timestamped folder; a `..data_tmp` symlink to it is
    renamed over `..data`; the user-visible files link through `..data`.
    """
    version = folder / f"..{stamp}"
    version.mkdir()
    (version / "consumers.yaml").write_text(CONSUMERS)
    (version / "quotas.yml").write_text(quotas)
    (folder / "..data_tmp").symlink_to(version.name)
    os.replace(folder / "..data_tmp", folder / "..data")
    for name in ("consumers.yaml", "quotas.yml"):
        if not (folder / name).is_symlink():
            (folder / name).symlink_to(f"..data/{name}")


async def test_configmap_data_symlink_swap(tmp_path: Path) -> None:
    """A ConfigMap update, seen only as a swap of the ..data symlink, is reloaded."""
    folder = tmp_path / "rules"
    folder.mkdir()
    configmap_version(folder, "2026_01_01_00_00_00.1", QUOTAS)
    source, watcher = watched_source(folder)

    async with watching(watcher):
        configmap_version(folder, "2026_01_02_00_00_00.2", RAISED_QUOTAS)
        shutil.rmtree(folder / "..2026_01_01_00_00_00.1")
        await serves_folder(source, folder)

    assert_raised(source)


async def test_refused_change_keeps_the_last_good_set(tmp_path: Path) -> None:
    """A bad change is logged problem by problem, counted once, and not served."""
    folder = good_folder(tmp_path / "rules")
    source, watcher = watched_source(folder, rescan_interval_s=0.05)
    served = source.current()
    bad = RAISED_QUOTAS.replace("cycle: day", "cycle: fortnight").replace(
        "timeZone: UTC", "timeZone: Mars/Base"
    )

    with structlog.testing.capture_logs() as logs:
        async with watching(watcher):
            (folder / "quotas.yml").write_text(bad)
            await eventually(lambda: source.failed_reloads == 1)
            # Several re-scans read the same bad bytes: no second count.
            await asyncio.sleep(0.3)

    problems = [
        (entry["log_level"], entry["file"], entry["line"], entry["problem"])
        for entry in logs
        if entry["event"] == "rules_problem"
    ]
    expected_problems = [
        (
            "error",
            "quotas.yml",
            8,
            "unknown cycle 'fortnight' (expected day, week or month)",
        ),
        ("error", "quotas.yml", 36, "unknown time zone 'Mars/Base'"),
    ]
    expected_error = [
        "quotas.yml:8: unknown cycle 'fortnight' (expected day, week or month)"
        " at spec.cycle",
        "quotas.yml:36: unknown time zone 'Mars/Base' at spec.timeZone",
    ]
    assert expected_problems == problems
    assert (served, 1) == (source.current(), source.failed_reloads)
    assert source.last_error is not None
    assert expected_error == [str(p) for p in source.last_error.problems]


async def test_rescan_finds_a_change_without_events(tmp_path: Path) -> None:
    """With file events missing, the periodic re-scan still finds the change."""
    folder = good_folder(tmp_path / "rules")
    source = RuleSource.from_folder(folder)
    watcher = RulesWatcher(folder, source, rescan_interval_s=0.05, use_events=False)

    async with watching(watcher):
        (folder / "quotas.yml").write_text(RAISED_QUOTAS)
        await serves_folder(source, folder)

    assert_raised(source)


async def test_burst_of_writes_is_one_reload(tmp_path: Path) -> None:
    """Twenty files written in one burst give one reload, of the final state."""
    folder = good_folder(tmp_path / "rules")
    accepted: list[RuleSet] = []
    watcher = RulesWatcher(
        folder,
        accepted.append,
        revision=load_rules(folder).revision,
        debounce_ms=300,
        rescan_interval_s=NO_RESCAN_S,
    )

    async with watching(watcher):
        consumer = CONSUMERS.split("---\n")[-1]
        for index in range(20):
            digest = f"{index:064x}"
            doc = consumer.replace("carol.svc", f"extra-{index}")
            doc = doc.replace(doc.split('"')[1], digest)
            (folder / f"extra-{index}.yaml").write_text(doc)
        expected = [load_rules(folder).revision]
        await eventually(lambda: bool(accepted))
        await asyncio.sleep(0.5)

    assert expected == [rule_set.revision for rule_set in accepted]


async def test_folder_removed_and_restored(tmp_path: Path) -> None:
    """A vanished folder is a refusal that keeps the set; its return is reloaded."""
    folder = good_folder(tmp_path / "rules")
    source, watcher = watched_source(folder, rescan_interval_s=0.05)
    served = source.current()

    async with watching(watcher):
        shutil.rmtree(folder)
        await eventually(lambda: source.failed_reloads == 1)
        kept = source.current()
        good_folder(folder)
        (folder / "quotas.yml").write_text(RAISED_QUOTAS)
        await serves_folder(source, folder)

    assert (served, None) == (kept, source.last_error)


async def test_callback_watcher_refuses_emptying_from_the_start(tmp_path: Path) -> None:
    """A watcher handing sets to a callback, told what is served, refuses a
    first change that drops every quota rule (as `extproc serve` wires it)."""
    folder = good_folder(tmp_path / "rules")
    served = load_rules(folder)
    accepted: list[RuleSet] = []
    refused: list[str] = []
    watcher = RulesWatcher(
        folder,
        accepted.append,
        on_refused=lambda error: refused.append(str(error)),
        serving=served,
        debounce_ms=50,
        rescan_interval_s=NO_RESCAN_S,
    )

    async with watching(watcher):
        (folder / "quotas.yml").unlink()
        await eventually(lambda: bool(refused))

    assert [] == accepted
    assert "no quota rules and rate limits" in refused[0]


async def test_restoring_the_served_rules_clears_the_refusal(tmp_path: Path) -> None:
    """Undoing a refused change serves the same revision and clears the error."""
    folder = good_folder(tmp_path / "rules")
    source, watcher = watched_source(folder)
    served = source.revision

    async with watching(watcher):
        (folder / "quotas.yml").write_text("kind: Nonsense\n")
        await eventually(lambda: source.failed_reloads == 1)
        (folder / "quotas.yml").write_text(QUOTAS)
        await eventually(lambda: source.last_error is None)

    assert (served, served, 1) == (
        source.revision,
        watcher.serving,
        source.failed_reloads,
    )
