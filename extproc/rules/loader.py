"""Loads a rules folder into a RuleSet, or refuses it naming every problem.

A folder holds any number of *.yaml and *.yml files, each with any number of
documents. Dot-files are skipped; symlinks are followed, which is how a
Kubernetes ConfigMap volume presents its files.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from extproc.errors import RuleProblem, RulesError
from extproc.rules.model import Consumer, RuleSet
from extproc.rules.schema import (
    CONSUMER,
    PRICING,
    QUOTA_RULE,
    RATE_LIMIT,
    Binding,
    ConsumerManifest,
    Document,
    PricingManifest,
    RateLimitManifest,
    RuleManifest,
    Site,
    parse_document,
)

RULE_SUFFIXES = (".yaml", ".yml")
REVISION_HEX_DIGITS = 12
# libyaml's composer is about ten times faster and keeps the same node marks.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_rules(folder: Path) -> RuleSet:
    """The validated rule set of `folder`; RulesError lists every problem."""
    return build_rules(read_folder(folder))


def read_folder(folder: Path) -> dict[str, bytes]:
    """The bytes of every rules file directly in `folder`, by file name."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        message = f"cannot read the rules folder: {exc.strerror}"
        raise RulesError([RuleProblem(str(folder), None, "", message)]) from exc
    files: dict[str, bytes] = {}
    problems: list[RuleProblem] = []
    for path in entries:
        if path.name.startswith(".") or path.suffix not in RULE_SUFFIXES:
            continue
        try:
            files[path.name] = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            # Gone since the listing (an editor's rename, a ConfigMap swap), a
            # dangling symlink, or a folder with a rules-like name: not a file.
            continue
        except OSError as exc:
            message = f"cannot read the file: {exc.strerror}"
            problems.append(RuleProblem(path.name, None, "", message))
    if problems:
        raise RulesError(problems)
    return files


def revision_of(files: Mapping[str, bytes]) -> str:
    """A short content hash of the files: equal contents, equal revisions."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        # Lengths delimit the parts, so no two different folders hash alike.
        digest.update(f"{len(name)}:{name}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()[:REVISION_HEX_DIGITS]


def build_rules(files: Mapping[str, bytes]) -> RuleSet:
    """Validates `files` (name to bytes) as one rule set and indexes it."""
    state = _State()
    for name in sorted(files):
        state.read_file(name, files[name])
    bindings = state.resolve_bindings()
    state.check_prices()
    if state.problems:
        raise RulesError(sorted(state.problems, key=_problem_order))
    return RuleSet.build(
        revision=revision_of(files),
        consumers={name: _consumer(m) for name, m in state.consumers.items()},
        rules={name: m.rule for name, m in state.rules.items()},
        bindings={name: bindings[name] for name in state.rules},
        prices={name: m.price for name, m in state.prices.items()},
        rate_limits={name: m.limit for name, m in state.rate_limits.items()},
        rate_bindings={name: bindings[name] for name in state.rate_limits},
    )


def _problem_order(problem: RuleProblem) -> tuple[str, int, str]:
    return problem.file, problem.line or 0, problem.path


def _consumer(manifest: ConsumerManifest) -> Consumer:
    return Consumer(name=manifest.name, keys=manifest.keys, labels=manifest.labels)


# Quota rules and rate limits share one namespace: events and usage name either.
_KIND_WORDS = {
    CONSUMER: "consumer",
    QUOTA_RULE: "rule",
    PRICING: "pricing",
    RATE_LIMIT: "rule",
}


@dataclass
class _State:
    """What one load has found so far across all files."""

    problems: list[RuleProblem] = field(default_factory=list)
    consumers: dict[str, ConsumerManifest] = field(default_factory=dict)
    rules: dict[str, RuleManifest] = field(default_factory=dict)
    prices: dict[str, PricingManifest] = field(default_factory=dict)
    # Every rule's binding, with the rule when it is valid.
    rate_limits: dict[str, RateLimitManifest] = field(default_factory=dict)
    # Every rule's (or rate limit's) binding, with its name when it is valid.
    bindings: list[tuple[Binding, str | None]] = field(default_factory=list)
    declared: dict[tuple[str, str], Site] = field(default_factory=dict)
    key_owners: dict[str, tuple[str, Site]] = field(default_factory=dict)
    # A file that does not parse, or a Consumer that does not validate, hides
    # which consumers exist: references to them cannot all be judged.
    unparsed: bool = False
    invalid_consumers: set[str | None] = field(default_factory=set)
    invalid_prices: set[str | None] = field(default_factory=set)

    def read_file(self, name: str, data: bytes) -> None:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            self.fail_parse(RuleProblem(name, line, "", "the file is not UTF-8 text"))
            return
        try:
            for root in yaml.compose_all(text, Loader=_YAML_LOADER):
                self.read_document(name, root)
        except yaml.YAMLError as exc:
            self.fail_parse(_syntax_problem(name, text, exc))
        except RecursionError:
            # Only the pure-Python composer recurses; libyaml caps nesting itself.
            message = "YAML syntax error: nested too deeply"
            self.fail_parse(RuleProblem(name, None, "", message))

    def fail_parse(self, problem: RuleProblem) -> None:
        self.problems.append(problem)
        self.unparsed = True

    def read_document(self, file: str, root: yaml.Node) -> None:
        doc = Document(file)
        manifest = parse_document(doc, root)
        self.problems.extend(doc.problems)
        if self.is_duplicate(doc):
            return
        if isinstance(manifest, ConsumerManifest):
            self.add_consumer(manifest)
        elif doc.kind == CONSUMER:
            self.invalid_consumers.add(doc.name)
        if isinstance(manifest, PricingManifest):
            self.prices[manifest.price.name] = manifest
        elif doc.kind == PRICING:
            self.invalid_prices.add(doc.name)
        valid_name = None
        if isinstance(manifest, RuleManifest):
            valid_name = manifest.rule.name
            self.rules[valid_name] = manifest
        elif isinstance(manifest, RateLimitManifest):
            valid_name = manifest.limit.name
            self.rate_limits[valid_name] = manifest
        if doc.binding is not None:
            self.bindings.append((doc.binding, valid_name))

    def is_duplicate(self, doc: Document) -> bool:
        """Whether the document reuses a name of its kind (names are per kind)."""
        if doc.kind is None or doc.name is None or doc.name_site is None:
            return False
        kind = _KIND_WORDS[doc.kind]
        first = self.declared.setdefault((kind, doc.name), doc.name_site)
        if first == doc.name_site:
            return False
        message = (
            f"duplicate {kind} name '{doc.name}' (first defined in {_place(first)})"
        )
        self.problems.append(doc.name_site.problem(message))
        return True

    def add_consumer(self, manifest: ConsumerManifest) -> None:
        """Registers a consumer; a key hash may belong to one consumer only."""
        self.consumers[manifest.name] = manifest
        for key, site in zip(manifest.keys, manifest.key_sites, strict=True):
            owner, first = self.key_owners.setdefault(key.sha256, (manifest.name, site))
            if first == site:
                continue
            if owner == manifest.name:
                message = f"key hash listed twice (first in {_place(first)})"
            else:
                message = (
                    f"key hash already bound to consumer '{owner}' (in {_place(first)})"
                )
            self.problems.append(site.problem(message))

    def check_prices(self) -> None:
        """Every defaultPrice names a Pricing; no two prices share a pattern,
        a currency and a start date (neither would be more specific)."""
        for manifest in self.rules.values():
            name, site = manifest.rule.default_price, manifest.default_price_site
            if site is None or name in self.prices:
                continue
            if not self.unparsed and name not in self.invalid_prices:
                self.problems.append(site.problem(f"unknown Pricing '{name}'"))
        first: dict[tuple[str, str, object], Site] = {}
        for pricing in self.prices.values():
            price = pricing.price
            for pattern in price.models:
                key = (pattern, price.currency, price.effective_from)
                seen = first.setdefault(key, pricing.name_site)
                if seen != pricing.name_site:
                    message = (
                        f"model pattern '{pattern}' is priced in {price.currency} "
                        f"from the same date in {_place(seen)} too"
                    )
                    self.problems.append(pricing.name_site.problem(message))

    def resolve_bindings(self) -> dict[str, tuple[str, ...]]:
        """Consumer names bound by each valid rule or rate limit, by its name:
        names plus selector matches."""
        index = _SelectorIndex(self.consumers.values())
        bindings: dict[str, tuple[str, ...]] = {}
        for binding, name in self.bindings:
            bound = self.bind(binding, index, judge_empty=name is not None)
            if name is not None:
                bindings[name] = bound
        return bindings

    def bind(
        self, binding: Binding, index: _SelectorIndex, *, judge_empty: bool
    ) -> tuple[str, ...]:
        bound: set[str] = set()
        unresolved = self.unparsed
        for name, site in binding.names:
            if name in self.consumers:
                bound.add(name)
            elif name in self.invalid_consumers or self.unparsed:
                unresolved = True
            else:
                self.problems.append(site.problem(f"unknown consumer '{name}'"))
                unresolved = True
        if binding.selector is not None:
            bound |= index.select(binding.selector)
            unresolved |= bool(self.invalid_consumers)
        if judge_empty and not bound and not unresolved:
            message = _binds_nobody(binding.selector)
            self.problems.append(binding.site.problem(message))
        return tuple(sorted(bound))


def _binds_nobody(selector: Mapping[str, str] | None) -> str:
    if selector is None:
        return "rule binds no consumer: list names or give a selector"
    labels = ", ".join(f"{key}={value}" for key, value in sorted(selector.items()))
    return f"rule binds no consumer: no consumer has the labels {labels}"


class _SelectorIndex:
    """Consumer names by label pair, so a selector costs a few set intersections."""

    def __init__(self, consumers: Iterable[ConsumerManifest]) -> None:
        self.everyone: set[str] = set()
        self.by_label: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        for consumer in consumers:
            self.everyone.add(consumer.name)
            for pair in consumer.labels.items():
                self.by_label[pair].add(consumer.name)

    def select(self, selector: Mapping[str, str]) -> set[str]:
        """Names of consumers carrying every pair; an empty selector matches all."""
        matches = [self.by_label.get(pair, set()) for pair in selector.items()]
        if not matches:
            return set(self.everyone)
        matches.sort(key=len)
        return set(matches[0]).intersection(*matches[1:])


def _place(site: Site) -> str:
    return f"{site.file}:{site.line}"


def _syntax_problem(file: str, text: str, exc: yaml.YAMLError) -> RuleProblem:
    """Locates a YAML error: marked errors carry a mark, reader errors a position."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        line = exc.problem_mark.line + 1
        detail = exc.problem or str(exc)
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        detail = str(exc).splitlines()[0]
    else:
        line, detail = None, str(exc).splitlines()[0]
    return RuleProblem(file, line, "", f"YAML syntax error: {detail}")
