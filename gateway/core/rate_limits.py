"""Rate limits: the rules, their setting's syntax, and the sliding-window arithmetic.

A rule allows ``limit`` units per ``period`` seconds to one subject (an API key or a client
address). Counts are kept per fixed window of ``period`` seconds; a request is weighed against
the current window's count plus the previous window's, scaled by how much of the previous window
still lies within the last ``period`` seconds (the "sliding window counter"): smooth at window
edges, two integers per subject, and the same arithmetic whether the counts live in memory or in
a shared database (:mod:`gateway.storage.rate_limits`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum


class Subject(StrEnum):
    """Who a rule counts for."""

    KEY = "key"  # an API key (workspace or operator)
    ADDRESS = "address"  # a client address, as the server sees it


@dataclass(frozen=True)
class Rule:
    name: str
    subject: Subject
    limit: int  # units per period; 0: the rule is off
    period: int  # seconds
    what: str  # what it counts, for the README and the error message

    @property
    def enabled(self) -> bool:
        return self.limit > 0


# The defaults, by name. ``BILLING_GATEWAY_RATE_LIMITS`` overrides any of them.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("requests_per_key", Subject.KEY, 6000, 60, "requests (and subscribe messages) of one API key"),
    Rule("requests_per_address", Subject.ADDRESS, 30000, 60, "requests of one client address"),
    Rule("payments_per_key", Subject.KEY, 20, 60, "checkout and topUp mutations of one API key"),
    Rule("payments_per_address", Subject.ADDRESS, 60, 60, "checkout and topUp mutations of one address"),
    Rule("cards_per_key", Subject.KEY, 10, 60, "addCard mutations of one API key"),
    Rule("cards_per_address", Subject.ADDRESS, 30, 60, "addCard mutations of one address"),
    Rule(
        "failed_sign_ins_per_address", Subject.ADDRESS, 20, 300, "wrong or revoked keys sent from one address"
    ),
)
RULE_NAMES = tuple(rule.name for rule in DEFAULT_RULES)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SPEC = re.compile(r"(\d+)\s*/\s*(\d*)\s*([smhd])")
MAX_PERIOD = 86400


class RateLimitSpecError(ValueError):
    """A ``BILLING_GATEWAY_RATE_LIMITS`` value the gateway cannot read."""


def parse_rules(raw: str) -> tuple[Rule, ...]:
    """The rules from a setting such as ``payments_per_key=5/1m, cards_per_key=3/10m``: every
    rule not named keeps its default; ``name=off`` turns one off; ``off`` alone turns all off."""
    text = raw.strip()
    if text.lower() == "off":
        return tuple(_with(rule, 0, rule.period) for rule in DEFAULT_RULES)
    rules = {rule.name: rule for rule in DEFAULT_RULES}
    seen: set[str] = set()
    for item in filter(None, (part.strip() for part in re.split(r"[,;]", text))):
        name, equals, spec = (part.strip() for part in item.partition("="))
        if not equals or name not in rules:
            raise RateLimitSpecError(
                f"{item!r} is not NAME=LIMIT/PERIOD with NAME one of {', '.join(RULE_NAMES)}"
            )
        if name in seen:
            raise RateLimitSpecError(f"{name} is set twice")
        seen.add(name)
        if spec.lower() == "off":
            rules[name] = _with(rules[name], 0, rules[name].period)
            continue
        match = _SPEC.fullmatch(spec.lower())
        period = int(match.group(2) or 1) * _UNITS[match.group(3)] if match else 0
        if match is None or not 1 <= period <= MAX_PERIOD or int(match.group(1)) < 1:
            raise RateLimitSpecError(
                f"{name}={spec!r}: give a positive count per period, like 20/1m, 600/30s or 5/1h "
                "(at most a day), or off"
            )
        rules[name] = _with(rules[name], int(match.group(1)), period)
    return tuple(rules[name] for name in RULE_NAMES)


def _with(rule: Rule, limit: int, period: int) -> Rule:
    return Rule(rule.name, rule.subject, limit, period, rule.what)


def describe(rule: Rule) -> str:
    """``20/60s`` or ``off``."""
    return f"{rule.limit}/{rule.period}s" if rule.enabled else "off"


@dataclass(frozen=True)
class Window:
    """Where ``now`` falls: the current window's index and the fraction of it elapsed."""

    index: int
    elapsed: float  # 0 <= elapsed < 1

    @classmethod
    def at(cls, now: float, period: int) -> Window:
        index, rest = divmod(now, period)
        return cls(int(index), rest / period)


def estimate(previous: int, current: int, window: Window) -> float:
    """Units counted within the last period."""
    return previous * (1.0 - window.elapsed) + current


def admits(previous: int, current: int, cost: int, limit: int, window: Window) -> bool:
    """Whether ``cost`` more units fit (with cost 0: whether the subject is under the limit)."""
    if cost == 0:
        return estimate(previous, current, window) < limit
    return estimate(previous, current, window) + cost <= limit


def retry_after(previous: int, current: int, cost: int, limit: int, window: Window, period: int) -> int:
    """Whole seconds (at least 1) until ``cost`` units fit, if nothing else is counted meanwhile."""
    need = max(cost, 1)
    if need > limit:
        return period  # more than a whole period allows: say when one period has passed
    if current + need <= limit and previous > 0:
        # Within this window: the previous window's weight must shrink enough.
        target = 1.0 - (limit - need - current) / previous
        wait = (target - window.elapsed) * period
    else:
        # Only after this window, as the current count becomes the previous one and fades.
        fade = 1.0 - (limit - need) / current if current > 0 else 0.0
        wait = (1.0 - window.elapsed) * period + max(fade, 0.0) * period
    return max(1, math.ceil(wait - 1e-9))
