"""Watches a rules folder and swaps in every valid revision of it.

File events (inotify through watchfiles) trigger a reload once a burst of them
has gone quiet. Events are taken from the folder itself, dot-files included,
because a Kubernetes ConfigMap update shows up only as a rename of its `..data`
symlink. A periodic re-scan backs the events up: some volumes never deliver
them, and a symlinked file edited outside the folder does not either. A reload
that reads the same bytes as the last one (same revision) does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import structlog
from watchfiles import awatch

from extproc.errors import RuleProblem, RulesError
from extproc.rules.loader import build_rules, read_folder, revision_of
from extproc.rules.model import RuleSet
from extproc.rules.source import RuleSource

DEFAULT_DEBOUNCE_MS = 200
DEFAULT_RESCAN_INTERVAL_S = 30.0
# A burst that never goes quiet (a slow checkout) still reloads after this long.
MIN_MAX_BATCH_MS = 2_000

log = structlog.get_logger()


class RulesWatcher:
    """Reloads the rules of `folder` when it changes and hands over each new set.

    `on_change` is either a RuleSource, which then serves every accepted set,
    records every refusal and tells the revision already served, or a function
    that receives every accepted RuleSet. Sets whose revision was already seen
    are not handed over again. Loading runs in a worker thread, so a large
    folder does not stall the requests served on the same loop; the callbacks
    run on the loop.
    """

    def __init__(
        self,
        folder: Path,
        on_change: RuleSource | Callable[[RuleSet], None],
        *,
        debounce_ms: int = DEFAULT_DEBOUNCE_MS,
        rescan_interval_s: float = DEFAULT_RESCAN_INTERVAL_S,
        on_refused: Callable[[RulesError], None] | None = None,
        revision: str | None = None,
        use_events: bool = True,
        serving: RuleSet | None = None,
    ) -> None:
        """`serving` is the set already served, if any (taken from a RuleSource
        by itself), and `revision` its revision; `use_events` False relies on
        the periodic re-scan alone."""
        if isinstance(on_change, RuleSource):
            on_refused = on_refused or on_change.refuse
            serving = serving or on_change.current()
            on_change = on_change.swap
        if serving is not None:
            revision = revision or serving.revision
        # Sizes of the served set: a change that empties it is refused.
        self._sizes = _sizes(serving) if serving is not None else None
        self.folder = folder
        self.on_change = on_change
        self.on_refused = on_refused
        self.debounce_ms = debounce_ms
        self.rescan_interval_s = rescan_interval_s
        self.use_events = use_events
        self.serving = revision
        self.ready = asyncio.Event()
        self._seen = revision
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        """Watches until stop() is called."""
        async with asyncio.TaskGroup() as group:
            if self.use_events:
                group.create_task(self._watch_events())
                # One turn of the loop lets the watch task register its inotify
                # watch before anything is compared.
                await asyncio.sleep(0)
            # Catches a change made between the first load and the watch start.
            await self.check()
            self.ready.set()
            group.create_task(self._rescan())

    def stop(self) -> None:
        self._stop.set()

    async def check(self) -> None:
        """Reloads the folder if its revision changed; never raises on bad rules."""
        async with self._lock:
            try:
                revision, outcome = await asyncio.to_thread(self._load)
            except Exception:
                log.exception("rules_reload_crashed", folder=str(self.folder))
                return
            if revision == self._seen or outcome is None:
                return
            self._seen = revision
            if isinstance(outcome, RuleSet):
                outcome = self._emptied(outcome) or outcome
            if isinstance(outcome, RuleSet):
                self._accept(outcome)
            else:
                self._refuse(revision, outcome)

    def _emptied(self, rules: RuleSet) -> RulesError | None:
        """A refusal when a change would drop every consumer or every limit.

        A folder that suddenly holds no consumers or no limits is far more often
        a broken mount (one of two ConfigMaps or Secrets missing) than a wish to
        let everyone through or nobody in. To serve such a set on purpose,
        restart the sidecar with it.
        """
        before, after = self._sizes, _sizes(rules)
        if before is None:
            return None
        for index, what in enumerate(("consumers", "quota rules and rate limits")):
            if before[index] and not after[index]:
                message = (
                    f"the new rules have no {what} (the served set has "
                    f"{before[index]}); refused as a likely broken mount, restart "
                    "the sidecar to serve them on purpose"
                )
                return RulesError([RuleProblem(self.folder.name, None, "", message)])
        return None

    def _load(self) -> tuple[str, RuleSet | RulesError | None]:
        """The folder's revision, and its rules unless the revision was seen.

        A folder that cannot be read is named by its error text, so that the
        same failure is reported once and not on every re-scan.
        """
        try:
            files = read_folder(self.folder)
        except RulesError as error:
            return f"unreadable: {error.render()}", error
        revision = revision_of(files)
        if revision == self._seen:
            return revision, None
        try:
            return revision, build_rules(files)
        except RulesError as error:
            return revision, error

    def _accept(self, rules: RuleSet) -> None:
        previous, self.serving = self.serving, rules.revision
        self._sizes = _sizes(rules)
        self.on_change(rules)
        # The served rules back on disk after a refused change: nothing new is
        # served, but the refusal no longer stands.
        event = "rules_restored" if previous == rules.revision else "rules_reloaded"
        log.info(
            event,
            folder=str(self.folder),
            revision=rules.revision,
            previous_revision=previous,
            consumers=len(rules.consumers),
            rules=len(rules.rules),
        )

    def _refuse(self, revision: str, error: RulesError) -> None:
        for problem in error.problems:
            log.error(
                "rules_problem",
                file=problem.file,
                line=problem.line,
                path=problem.path,
                problem=problem.message,
            )
        log.error(
            "rules_reload_refused",
            folder=str(self.folder),
            refused_revision=revision,
            serving_revision=self.serving,
            problems=len(error.problems),
        )
        if self.on_refused is not None:
            self.on_refused(error)

    async def _watch_events(self) -> None:
        """Reloads after each quiet burst of events; restarts the watch if it fails."""
        while not self._stop.is_set():
            try:
                async for _ in awatch(
                    self.folder,
                    watch_filter=None,
                    step=self.debounce_ms,
                    debounce=max(MIN_MAX_BATCH_MS, 10 * self.debounce_ms),
                    stop_event=self._stop,
                    recursive=False,
                ):
                    await self.check()
            except Exception:
                # Typically the folder itself is gone or unreadable. The re-scan
                # goes on meanwhile; the watch is retried after one interval.
                log.exception("rules_watch_failed", folder=str(self.folder))
                await self._pause(self.rescan_interval_s)

    async def _rescan(self) -> None:
        while not await self._pause(self.rescan_interval_s):
            await self.check()

    async def _pause(self, seconds: float) -> bool:
        """Sleeps up to `seconds`; True if stop() was called meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()


def _sizes(rules: RuleSet) -> tuple[int, int]:
    """How many consumers, and how many quota rules and rate limits, a set has."""
    return len(rules.consumers), len(rules.rules) + len(rules.rate_limits)
