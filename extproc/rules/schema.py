"""The manifest schema of rules files (apiVersion extproc/v1): one document at a time.

Documents are read from composed YAML nodes rather than from constructed Python
values, so that every problem carries its line, and so that YAML 1.1 surprises
(`no` read as a boolean, `017` read as octal) are refused instead of converted.
Checks that need more than one document (duplicates, references) are the
loader's.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from typing import NamedTuple, TypeVar

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from extproc.errors import RuleProblem
from extproc.rules.model import (
    ApiKey,
    Counts,
    FailurePolicy,
    LimitType,
    Mode,
    Price,
    QuotaRule,
    RateLimit,
    RateMeasure,
    RateUnit,
    UnknownPrice,
)
from extproc.windows import Cycle

API_VERSION = "extproc/v1"
CONSUMER = "Consumer"
QUOTA_RULE = "QuotaRule"
PRICING = "Pricing"
RATE_LIMIT = "RateLimit"
KINDS = (CONSUMER, QUOTA_RULE, PRICING, RATE_LIMIT)

# Defaults of optional QuotaRule fields; docs/rules.md lists the same table.
DEFAULT_TIME_ZONE = "Asia/Shanghai"
DEFAULT_WEEK_START = "monday"
DEFAULT_FAILURE_POLICY = FailurePolicy.CLOSED
DEFAULT_MODE = Mode.ENFORCE

WEEKDAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?")
MAX_NAME_LENGTH = 63
KEY_HASH_PATTERN = re.compile(r"[0-9a-f]{64}")
# Redis scripts do their arithmetic in Lua numbers (doubles), exact up to 2**53.
MAX_QUOTA = 2**53 - 1
# Plain decimal only: YAML 1.1 would read 017 as octal 15 and 1:30 as 90.
DECIMAL_PATTERN = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
# Amounts of money and prices: plain decimals, read as text so no float rounds them.
AMOUNT_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Cost quotas are stored in micro-units: six decimal places at most.
MICRO_DIGITS = 6

_TAG = "tag:yaml.org,2002:"
_TYPE_NAMES = {
    f"{_TAG}str": "string",
    f"{_TAG}int": "integer",
    f"{_TAG}float": "number",
    f"{_TAG}bool": "boolean",
    f"{_TAG}null": "null",
    f"{_TAG}timestamp": "timestamp",
    f"{_TAG}binary": "binary",
}

T = TypeVar("T")


class Site(NamedTuple):
    """Where a value was written: file, 1-based line and dotted field path."""

    file: str
    line: int
    path: str

    def problem(self, message: str) -> RuleProblem:
        return RuleProblem(self.file, self.line, self.path, message)


@dataclass(frozen=True, slots=True)
class ConsumerManifest:
    """A valid Consumer document, with the sites the loader cites in problems."""

    name: str
    labels: dict[str, str]
    keys: tuple[ApiKey, ...]
    name_site: Site
    key_sites: tuple[Site, ...]


@dataclass(frozen=True, slots=True)
class Binding:
    """Whom a rule names: consumer names and a label selector, not yet resolved."""

    names: tuple[tuple[str, Site], ...]
    selector: dict[str, str] | None
    site: Site


@dataclass(frozen=True, slots=True)
class RuleManifest:
    """A valid QuotaRule document."""

    rule: QuotaRule
    binding: Binding
    name_site: Site
    default_price_site: Site | None = None  # where a defaultPrice is named


@dataclass(frozen=True, slots=True)
class PricingManifest:
    """A valid Pricing document."""

    price: Price
    name_site: Site


@dataclass(frozen=True, slots=True)
class RateLimitManifest:
    """A valid RateLimit document."""

    limit: RateLimit
    binding: Binding
    name_site: Site


Manifest = ConsumerManifest | RuleManifest | PricingManifest | RateLimitManifest


@cache
def known_time_zones() -> frozenset[str]:
    """IANA zone names, from the tzdata package so every host agrees."""
    listing = importlib.resources.files("tzdata").joinpath("zones").read_text()
    # "Factory" is a placeholder in the database, not a place anybody lives.
    return frozenset(listing.split()) - {"Factory"}


class Document:
    """Reads one YAML document, collecting problems instead of stopping at one."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[RuleProblem] = []
        # What the document declares, as far as it could be read.
        self.kind: str | None = None
        self.name: str | None = None
        self.name_site: Site | None = None
        # A rule's binding, kept even when other fields of the rule are wrong,
        # so that its references to consumers are checked as well.
        self.binding: Binding | None = None

    def site(self, node: Node, path: str) -> Site:
        return Site(self.file, node.start_mark.line + 1, path)

    def fail(self, node: Node, path: str, message: str) -> None:
        self.problems.append(self.site(node, path).problem(message))

    def mapping(
        self,
        node: Node,
        path: str,
        required: tuple[str, ...],
        optional: tuple[str, ...],
    ) -> Fields | None:
        """The fields of a mapping node; unknown, repeated and missing keys fail.

        With no `required` and no `optional` names, any key is accepted.
        """
        if not isinstance(node, MappingNode):
            self.fail(node, path, f"expected a mapping, got {describe(node)}")
            return None
        fields = Fields(self, path)
        for key_node, value in node.value:
            key = self.key(key_node, path, fields.nodes, required + optional)
            if key is not None:
                fields.nodes[key] = value
        for key in required:
            if key not in fields.nodes:
                self.fail(node, join(path, key), "missing required field")
        return fields

    def key(
        self, node: Node, path: str, seen: Mapping[str, Node], known: tuple[str, ...]
    ) -> str | None:
        if not is_string(node):
            self.fail(node, path, f"expected a field name, got {describe(node)}")
            return None
        key = str(node.value)
        if key in seen:
            self.fail(node, join(path, key), f"duplicate key '{key}'")
            return None
        if known and key not in known:
            self.fail(node, join(path, key), f"unknown key '{key}'")
            return None
        return key

    def string(self, node: Node, path: str) -> str | None:
        if is_string(node):
            return str(node.value)
        hint = " (quote it to mean the text)" if isinstance(node, ScalarNode) else ""
        self.fail(node, path, f"expected a string, got {describe(node)}{hint}")
        return None

    def integer(self, node: Node, path: str) -> int | None:
        if not isinstance(node, ScalarNode) or node.tag != f"{_TAG}int":
            self.fail(node, path, f"expected an integer, got {describe(node)}")
            return None
        if not DECIMAL_PATTERN.fullmatch(node.value):
            message = f"write integers in plain decimal digits, got '{node.value}'"
            self.fail(node, path, message)
            return None
        return int(node.value.replace("_", ""))

    def items(self, node: Node, path: str) -> list[tuple[Node, str]] | None:
        """The items of a sequence node, each with its indexed path."""
        if not isinstance(node, SequenceNode):
            self.fail(node, path, f"expected a list, got {describe(node)}")
            return None
        return [(item, f"{path}[{index}]") for index, item in enumerate(node.value)]

    def strings(self, node: Node, path: str) -> list[tuple[str, Site]] | None:
        """A list of strings, each with the site it was written at."""
        items = self.items(node, path)
        if items is None:
            return None
        result = []
        for item, item_path in items:
            value = self.string(item, item_path)
            if value is not None:
                result.append((value, self.site(item, item_path)))
        return result

    def string_map(self, node: Node, path: str) -> dict[str, str] | None:
        """A mapping of string to string, such as labels or a selector."""
        fields = self.mapping(node, path, (), ())
        if fields is None:
            return None
        result: dict[str, str] = {}
        for key, value_node in fields.nodes.items():
            value = self.string(value_node, join(path, key))
            if value is not None:
                result[key] = value
        return result

    def choice(self, allowed: tuple[str, ...]) -> Reader[str]:
        """A reader of a string that must be one of `allowed`."""

        def read(node: Node, path: str) -> str | None:
            value = self.string(node, path)
            if value is None or value in allowed:
                return value
            what = path.rsplit(".", 1)[-1]
            self.fail(node, path, f"unknown {what} '{value}' ({one_of(allowed)})")
            return None

        return read

    def read_name(self, node: Node, path: str) -> str | None:
        """A consumer or rule name: it becomes part of Redis keys and metrics."""
        value = self.string(node, path)
        if value is None:
            return None
        self.name, self.name_site = value, self.site(node, path)
        if len(value) > MAX_NAME_LENGTH:
            message = f"name longer than {MAX_NAME_LENGTH} characters: '{value}'"
            self.fail(node, path, message)
            return None
        if not NAME_PATTERN.fullmatch(value):
            message = (
                f"invalid name '{value}': use lowercase letters, digits, '-', '_'"
                " and '.', starting and ending with a letter or digit"
            )
            self.fail(node, path, message)
            return None
        return value

    def binding_of(self, node: Node, path: str) -> Binding | None:
        """The consumer names and the label selector of a rule."""
        fields = self.mapping(node, path, (), ("names", "selector"))
        if fields is None:
            return None
        names = fields.get("names", self.strings, list[tuple[str, Site]]())
        selector = fields.get("selector", self.string_map, None)
        if names is None:
            return None
        return Binding(tuple(names), selector, self.site(node, path))

    def quota(self, node: Node, path: str) -> int | None:
        """A positive amount (a quota, a limit's amount) that Lua counts exactly."""
        value = self.integer(node, path)
        if value is None:
            return None
        what = path.rsplit(".", 1)[-1]
        if value <= 0:
            self.fail(node, path, f"{what} must be a positive integer, got {value}")
            return None
        if value > MAX_QUOTA:
            self.fail(node, path, f"{what} above the supported maximum {MAX_QUOTA}")
            return None
        return value

    def amount(self, node: Node, path: str) -> Decimal | None:
        """A non-negative decimal number, kept exact (`2.50` stays 2.50)."""
        scalar = isinstance(node, ScalarNode) and node.tag in (
            f"{_TAG}int",
            f"{_TAG}float",
            f"{_TAG}str",
        )
        if not scalar or not AMOUNT_PATTERN.fullmatch(str(node.value)):
            got = describe(node)
            self.fail(node, path, f"expected a decimal amount like 2.50, got {got}")
            return None
        return Decimal(str(node.value))

    def money_quota(self, node: Node, path: str) -> int | None:
        """A cost quota: a positive amount of the currency, in micro-units."""
        amount = self.amount(node, path)
        if amount is None:
            return None
        if amount <= 0:
            self.fail(node, path, f"quota must be positive, got {node.value}")
            return None
        micros = amount.scaleb(MICRO_DIGITS)
        if micros != micros.to_integral_value():
            message = f"write at most {MICRO_DIGITS} decimal places, got {node.value}"
            self.fail(node, path, message)
            return None
        if micros > MAX_QUOTA:
            self.fail(node, path, "quota above the supported maximum")
            return None
        return int(micros)

    def currency(self, node: Node, path: str) -> str | None:
        value = self.string(node, path)
        if value is None or CURRENCY_PATTERN.fullmatch(value):
            return value
        message = f"expected a three-letter currency code like USD, got '{value}'"
        self.fail(node, path, message)
        return None

    def day(self, node: Node, path: str) -> date | None:
        """A calendar date written as YYYY-MM-DD (quoted or not)."""
        text = str(node.value) if isinstance(node, ScalarNode) else ""
        if node.tag in (f"{_TAG}str", f"{_TAG}timestamp") and DATE_PATTERN.fullmatch(
            text
        ):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        self.fail(node, path, f"expected a date as YYYY-MM-DD, got {describe(node)}")
        return None

    def thresholds(self, node: Node, path: str) -> tuple[int, ...] | None:
        """Distinct percentages from 1 to 100, returned in ascending order."""
        items = self.items(node, path)
        if items is None:
            return None
        found: set[int] = set()
        for item, item_path in items:
            value = self.integer(item, item_path)
            if value is None:
                return None
            if not 1 <= value <= 100 or value in found:
                message = f"thresholds are distinct percentages 1 to 100, got {value}"
                self.fail(item, item_path, message)
                return None
            found.add(value)
        return tuple(sorted(found))

    def time_zone(self, node: Node, path: str) -> str | None:
        value = self.string(node, path)
        if value is None or value in known_time_zones():
            return value
        self.fail(node, path, f"unknown time zone '{value}'")
        return None

    def patterns(self, node: Node, path: str) -> list[str] | None:
        """Shell-style model patterns; an empty one would match nothing useful."""
        patterns = self.strings(node, path)
        if patterns is None:
            return None
        for pattern, site in patterns:
            if not pattern:
                self.problems.append(site.problem("empty model pattern"))
                return None
        return [pattern for pattern, _ in patterns]


Reader = Callable[[Node, str], T | None]


class Fields:
    """The fields of one mapping node, read by name with their dotted paths."""

    def __init__(self, doc: Document, path: str) -> None:
        self.doc = doc
        self.path = path
        self.nodes: dict[str, Node] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.nodes

    def site(self, key: str) -> Site:
        return self.doc.site(self.nodes[key], join(self.path, key))

    def read(self, key: str, reader: Reader[T]) -> T | None:
        """The field read with `reader`; None when missing (already reported)."""
        if key not in self.nodes:
            return None
        return reader(self.nodes[key], join(self.path, key))

    def get(self, key: str, reader: Reader[T], default: T) -> T | None:
        """An optional field read with `reader`, or `default` when absent."""
        if key not in self.nodes:
            return default
        return reader(self.nodes[key], join(self.path, key))


def is_string(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == f"{_TAG}str"


def describe(node: Node) -> str:
    """Names the type of a node for a message, with its text when it is a scalar."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == f"{_TAG}null":
        return "null"
    kind = _TYPE_NAMES.get(node.tag, f"a value tagged {node.tag}")
    return f"{kind} '{node.value}'"


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def one_of(allowed: tuple[str, ...]) -> str:
    if len(allowed) == 1:
        return f"expected {allowed[0]}"
    return f"expected {', '.join(allowed[:-1])} or {allowed[-1]}"


def parse_document(doc: Document, root: Node) -> Manifest | None:
    """Validates one document; None (with problems in `doc`) when it is invalid.

    An empty document (a bare `---`) is None without a problem.
    """
    if isinstance(root, ScalarNode) and root.tag == f"{_TAG}null" and not root.value:
        return None
    top = doc.mapping(root, "", ("apiVersion", "kind", "metadata", "spec"), ())
    if top is None:
        return None
    version = top.read("apiVersion", doc.string)
    if version is not None and version != API_VERSION:
        message = f"unsupported apiVersion '{version}' (expected {API_VERSION})"
        doc.fail(top.nodes["apiVersion"], "apiVersion", message)
    kind = top.read("kind", doc.choice(KINDS))
    doc.kind = kind
    if kind is None or "metadata" not in top or "spec" not in top:
        return None
    parse = _PARSERS[kind]
    before = len(doc.problems)
    manifest = parse(doc, top.nodes["metadata"], top.nodes["spec"])
    return manifest if len(doc.problems) == before else None


def parse_consumer(doc: Document, meta: Node, spec: Node) -> Manifest | None:
    metadata = doc.mapping(meta, "metadata", ("name",), ("labels",))
    fields = doc.mapping(spec, "spec", ("keys",), ())
    if metadata is None or fields is None:
        return None
    name = metadata.read("name", doc.read_name)
    labels = metadata.get("labels", doc.string_map, dict[str, str]())
    keys = fields.read("keys", lambda node, path: parse_keys(doc, node, path))
    if name is None or labels is None or keys is None:
        return None
    return ConsumerManifest(
        name=name,
        labels=labels,
        keys=tuple(key for key, _ in keys),
        name_site=metadata.site("name"),
        key_sites=tuple(site for _, site in keys),
    )


def parse_keys(
    doc: Document, node: Node, path: str
) -> list[tuple[ApiKey, Site]] | None:
    items = doc.items(node, path)
    if items is None:
        return None
    if not items:
        doc.fail(node, path, "a consumer needs at least one key")
        return None
    keys = [parse_key(doc, item, item_path) for item, item_path in items]
    return [key for key in keys if key is not None]


def parse_key(doc: Document, node: Node, path: str) -> tuple[ApiKey, Site] | None:
    fields = doc.mapping(node, path, ("sha256",), ("name",))
    if fields is None:
        return None
    label = fields.get("name", doc.string, "")
    digest = fields.read("sha256", doc.string)
    if digest is None or label is None:
        return None
    if not KEY_HASH_PATTERN.fullmatch(digest):
        # The value is not echoed: a malformed hash is often a pasted raw key.
        message = (
            "malformed key hash: expected 64 lowercase hex digits"
            " (the SHA-256 of the key, see `extproc hash-key`)"
        )
        doc.problems.append(fields.site("sha256").problem(message))
        return None
    return ApiKey(sha256=digest, name=label), fields.site("sha256")


LIMIT_TYPES = tuple(limit.value for limit in LimitType)
CYCLES = tuple(cycle.value for cycle in Cycle)
FAILURE_POLICIES = tuple(policy.value for policy in FailurePolicy)
COUNTS = tuple(counts.value for counts in Counts)
UNKNOWN_PRICES = tuple(policy.value for policy in UnknownPrice)
RULE_REQUIRED = ("limitType", "quota", "cycle", "consumers")
RULE_OPTIONAL = (
    "timeZone",
    "weekStart",
    "models",
    "failurePolicy",
    "counts",
    "currency",
    "unknownPrice",
    "defaultPrice",
    "thresholds",
    "mode",
)
MODES = tuple(mode.value for mode in Mode)
# Fields that only some limit types take, and the types that take them.
_ONLY_FOR = {
    "counts": (LimitType.TOKEN,),
    "currency": (LimitType.COST,),
    "unknownPrice": (LimitType.COST,),
    "defaultPrice": (LimitType.COST,),
}


def parse_rule(doc: Document, meta: Node, spec: Node) -> Manifest | None:
    read = parse_bound(
        doc,
        (meta, spec),
        (RULE_REQUIRED, RULE_OPTIONAL),
        lambda fields, name: rule_fields(doc, fields, name),
    )
    if read is None:
        return None
    rule, binding, name_site, fields = read
    default_site = fields.site("defaultPrice") if "defaultPrice" in fields else None
    return RuleManifest(rule, binding, name_site, default_site)


def parse_bound(
    doc: Document,
    nodes: tuple[Node, Node],
    keys: tuple[tuple[str, ...], tuple[str, ...]],
    read_spec: Callable[[Fields, str], T | None],
) -> tuple[T, Binding, Site, Fields] | None:
    """A document that binds consumers (QuotaRule, RateLimit): its spec read by
    `read_spec`, its binding, its name's site and its spec fields."""
    metadata = doc.mapping(nodes[0], "metadata", ("name",), ())
    fields = doc.mapping(nodes[1], "spec", *keys)
    if metadata is None or fields is None:
        return None
    name = metadata.read("name", doc.read_name)
    value = read_spec(fields, name or "")
    doc.binding = fields.read("consumers", doc.binding_of)
    if name is None or value is None or doc.binding is None:
        return None
    return value, doc.binding, metadata.site("name"), fields


def rule_fields(doc: Document, spec: Fields, name: str) -> QuotaRule | None:
    """The QuotaRule that `spec` describes; every field is read, to report all."""
    limit_text = spec.read("limitType", doc.choice(LIMIT_TYPES))
    limit = LimitType(limit_text) if limit_text is not None else None
    quota = spec.read(
        "quota", doc.money_quota if limit is LimitType.COST else doc.quota
    )
    cycle = spec.read("cycle", doc.choice(CYCLES))
    zone = spec.get("timeZone", doc.time_zone, DEFAULT_TIME_ZONE)
    week = spec.get("weekStart", doc.choice(WEEKDAYS), DEFAULT_WEEK_START)
    models = spec.get("models", doc.patterns, list[str]())
    policy = spec.get(
        "failurePolicy", doc.choice(FAILURE_POLICIES), DEFAULT_FAILURE_POLICY.value
    )
    thresholds = spec.get("thresholds", doc.thresholds, tuple[int, ...]())
    mode = spec.get("mode", doc.choice(MODES), DEFAULT_MODE.value)
    measure = limit_fields(doc, spec, limit)
    if limit is None or quota is None or cycle is None or zone is None:
        return None
    if week is None or models is None or policy is None:
        return None
    if thresholds is None or measure is None or mode is None:
        return None
    return QuotaRule(
        name=name,
        limit_type=limit,
        quota=quota,
        cycle=Cycle(cycle),
        zone=zone,
        week_start=WEEKDAYS.index(week),
        models=tuple(models),
        failure_policy=FailurePolicy(policy),
        thresholds=thresholds,
        counts=measure[0],
        currency=measure[1],
        unknown_price=measure[2],
        default_price=measure[3],
        mode=Mode(mode),
    )


def limit_fields(
    doc: Document, spec: Fields, limit: LimitType | None
) -> tuple[Counts, str, UnknownPrice, str] | None:
    """How a rule of type `limit` measures a call: counts, currency, unknown
    price policy and default price."""
    wrong = [key for key, types in _ONLY_FOR.items() if key in spec]
    wrong = [key for key in wrong if limit is not None and limit not in _ONLY_FOR[key]]
    for key in wrong:
        allowed = " and ".join(str(t) for t in _ONLY_FOR[key])
        message = f"{key} applies to limitType {allowed} only"
        doc.problems.append(spec.site(key).problem(message))
    counts = spec.get("counts", doc.choice(COUNTS), Counts.TOTAL.value)
    currency = spec.get("currency", doc.currency, "")
    unknown = spec.get(
        "unknownPrice", doc.choice(UNKNOWN_PRICES), UnknownPrice.REFUSE.value
    )
    default = spec.get("defaultPrice", doc.string, "")
    if wrong or counts is None or currency is None or unknown is None:
        return None
    if default is None or not _cost_fields_agree(doc, spec, limit, unknown):
        return None
    return Counts(counts), currency, UnknownPrice(unknown), default


def _cost_fields_agree(
    doc: Document, spec: Fields, limit: LimitType | None, unknown: str
) -> bool:
    """A cost rule names its currency; defaultPrice goes with unknownPrice
    default, and only with it."""
    if limit is not LimitType.COST:
        return True
    if "currency" not in spec:
        where = spec.site("limitType")._replace(path=join(spec.path, "currency"))
        doc.problems.append(where.problem("a cost rule needs a currency"))
        return False
    wants_default = unknown == UnknownPrice.DEFAULT.value
    if wants_default and "defaultPrice" not in spec:
        message = "unknownPrice default needs a defaultPrice (a Pricing name)"
        where = spec.site("unknownPrice")._replace(path=join(spec.path, "defaultPrice"))
        doc.problems.append(where.problem(message))
        return False
    if not wants_default and "defaultPrice" in spec:
        message = "defaultPrice is used only with unknownPrice: default"
        doc.problems.append(spec.site("defaultPrice").problem(message))
        return False
    return True


PRICING_REQUIRED = ("currency", "perMillionTokens")
PRICING_OPTIONAL = ("models", "effectiveFrom")
PRICES_REQUIRED = ("input", "output")
PRICES_OPTIONAL = ("cachedInput", "cacheWrite", "reasoning")


def parse_pricing(doc: Document, meta: Node, spec: Node) -> Manifest | None:
    metadata = doc.mapping(meta, "metadata", ("name",), ())
    fields = doc.mapping(spec, "spec", PRICING_REQUIRED, PRICING_OPTIONAL)
    if metadata is None or fields is None:
        return None
    name = metadata.read("name", doc.read_name)
    currency = fields.read("currency", doc.currency)
    models = fields.get("models", doc.patterns, list[str]())
    since = fields.get("effectiveFrom", doc.day, None)
    prices = fields.read("perMillionTokens", lambda n, p: price_fields(doc, n, p))
    if name is None or currency is None or models is None or prices is None:
        return None
    if "effectiveFrom" in fields and since is None:
        return None
    price = Price(name, currency, *prices, tuple(models), since)
    return PricingManifest(price, metadata.site("name"))


def price_fields(
    doc: Document, node: Node, path: str
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal] | None:
    """Input, output, cached-input, cache-write and reasoning prices; the last
    three default to the input, input and output price."""
    fields = doc.mapping(node, path, PRICES_REQUIRED, PRICES_OPTIONAL)
    if fields is None:
        return None
    read = {key: fields.read(key, doc.amount) for key in PRICES_REQUIRED}
    if read["input"] is None or read["output"] is None:
        return None
    given, output = read["input"], read["output"]
    cached = fields.get("cachedInput", doc.amount, given)
    written = fields.get("cacheWrite", doc.amount, given)
    reasoning = fields.get("reasoning", doc.amount, output)
    if cached is None or written is None or reasoning is None:
        return None
    return given, output, cached, written, reasoning


RATE_MEASURES = tuple(measure.value for measure in RateMeasure)
RATE_UNITS = tuple(unit.value for unit in RateUnit)
RATE_REQUIRED = ("limit", "amount", "consumers")
RATE_OPTIONAL = ("unit", "counts", "models", "mode", "failurePolicy")


def parse_rate_limit(doc: Document, meta: Node, spec: Node) -> Manifest | None:
    read = parse_bound(
        doc,
        (meta, spec),
        (RATE_REQUIRED, RATE_OPTIONAL),
        lambda fields, name: rate_limit_fields(doc, fields, spec, name),
    )
    return RateLimitManifest(*read[:3]) if read is not None else None


def rate_limit_fields(
    doc: Document, spec: Fields, node: Node, name: str
) -> RateLimit | None:
    """The RateLimit that `spec` describes; every field is read, to report all."""
    measure = spec.read("limit", doc.choice(RATE_MEASURES))
    amount = spec.read("amount", doc.quota)
    unit = spec.get("unit", doc.choice(RATE_UNITS), None)
    counts = spec.get("counts", doc.choice(COUNTS), Counts.TOTAL.value)
    models = spec.get("models", doc.patterns, list[str]())
    mode = spec.get("mode", doc.choice(MODES), DEFAULT_MODE.value)
    policy = spec.get(
        "failurePolicy", doc.choice(FAILURE_POLICIES), DEFAULT_FAILURE_POLICY.value
    )
    if measure is None:
        return None
    if not rate_fields_agree(doc, spec, node, RateMeasure(measure)):
        return None
    if amount is None or counts is None or models is None:
        return None
    if mode is None or policy is None:
        return None
    return RateLimit(
        name=name,
        measure=RateMeasure(measure),
        amount=amount,
        unit=RateUnit(unit) if unit is not None else None,
        models=tuple(models),
        counts=Counts(counts),
        mode=Mode(mode),
        failure_policy=FailurePolicy(policy),
    )


def rate_fields_agree(
    doc: Document, spec: Fields, node: Node, measure: RateMeasure
) -> bool:
    """A unit is needed exactly when the limit has a window; `counts` only when
    it counts tokens."""
    problems = len(doc.problems)
    if measure is RateMeasure.CONCURRENT and "unit" in spec:
        doc.problems.append(spec.site("unit").problem("a concurrent limit has no unit"))
    if measure is not RateMeasure.CONCURRENT and "unit" not in spec:
        doc.fail(node, join(spec.path, "unit"), "missing required field")
    if measure is not RateMeasure.TOKENS and "counts" in spec:
        message = f"only a tokens limit counts tokens, not a {measure} limit"
        doc.problems.append(spec.site("counts").problem(message))
    return len(doc.problems) == problems


_PARSERS = {
    CONSUMER: parse_consumer,
    QUOTA_RULE: parse_rule,
    PRICING: parse_pricing,
    RATE_LIMIT: parse_rate_limit,
}
