"""The data side of EU VAT: member states, the effective-dated rate table, VAT IDs.

Kept apart from the calculator so the policy in ``__init__`` reads as policy.
Everything here is loaded or computed once; lookups are pure and thread-safe.
"""

from __future__ import annotations

import csv
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from os import PathLike
from pathlib import Path

from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError
from stdnum.util import clean

from gateway.plugin_api import EU_MEMBER_STATES, InvalidTaxId

#: ISO 3166-1 alpha-2 codes of the 27 EU member states (the gateway's list, so routing and
#: the calculator agree on what ``EU`` means).
MEMBER_STATES: frozenset[str] = EU_MEMBER_STATES

# VAT numbers use ISO codes except for Greece ("EL"); stdnum also accepts "GR".
_VAT_PREFIX = {country: country for country in MEMBER_STATES} | {"GR": "EL"}
_PREFIX_TO_COUNTRY = {prefix: country for country, prefix in _VAT_PREFIX.items()} | {"GR": "GR"}

_HEADER = ["country", "rate", "valid_from"]


class VatRateNotFound(LookupError):
    """No rate is known for a country on a date (before its first table row)."""


@dataclass(frozen=True, slots=True)
class _CountryRates:
    starts: tuple[date, ...]  # ascending, for bisect
    rates: tuple[Decimal, ...]


class RateTable:
    """Standard VAT rates by country and date.

    Built once from the CSV; per-country sorted start dates make a lookup one
    dict access plus one bisect, cheap enough for every live-preview request.
    """

    def __init__(self, rows: dict[str, list[tuple[date, Decimal]]]) -> None:
        self._by_country: dict[str, _CountryRates] = {}
        for country, changes in rows.items():
            ordered = sorted(changes)
            self._by_country[country] = _CountryRates(
                tuple(start for start, _ in ordered), tuple(rate for _, rate in ordered)
            )

    @property
    def countries(self) -> frozenset[str]:
        return frozenset(self._by_country)

    def rate(self, country: str, on: date) -> Decimal:
        """The standard rate in force in ``country`` on ``on``."""
        try:
            table = self._by_country[country]
        except KeyError:
            raise VatRateNotFound(f"no VAT rates for {country!r}") from None
        index = bisect_right(table.starts, on) - 1
        if index < 0:
            raise VatRateNotFound(
                f"no VAT rate for {country} on {on.isoformat()}; "
                f"the table starts on {table.starts[0].isoformat()}"
            )
        return table.rates[index]


def load_rates(
    path: str | PathLike[str],
    countries: frozenset[str] = MEMBER_STATES,
    required: frozenset[str] | None = None,
    what: str = "member state",
) -> RateTable:
    """Read and validate a ``country,rate,valid_from`` CSV.

    Blank lines and lines starting with ``#`` are ignored. Any bad row raises
    ValueError naming the file, the line and the field, so a broken data file
    stops start-up instead of mispricing orders later. Rows may only name
    ``countries`` (a ``what`` each) and every one of ``required`` (all of
    ``countries`` unless given) must be present.
    """
    path = Path(path)
    rows: dict[str, list[tuple[date, Decimal]]] = {}
    seen: set[tuple[str, date]] = set()
    header_seen = False
    with path.open(encoding="utf-8", newline="") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = [f.strip() for f in next(csv.reader([line]))]
            where = f"{path}, line {lineno}"
            if not header_seen:
                if fields != _HEADER:
                    raise ValueError(f"{where}: expected header {','.join(_HEADER)!r}, got {line.strip()!r}")
                header_seen = True
                continue
            if len(fields) != len(_HEADER):
                raise ValueError(f"{where}: expected {len(_HEADER)} fields, got {len(fields)}")
            country, rate, valid_from = _parse_row(where, countries, what, *fields)
            if (country, valid_from) in seen:
                raise ValueError(f"{where}, field 'valid_from': duplicate {country} row for {valid_from}")
            seen.add((country, valid_from))
            rows.setdefault(country, []).append((valid_from, rate))
    if not header_seen:
        raise ValueError(f"{path}: empty rate table")
    missing = (countries if required is None else required) - rows.keys()
    if missing:
        raise ValueError(f"{path}: no rates for {what}(s) {', '.join(sorted(missing))}")
    return RateTable(rows)


def _parse_row(
    where: str, countries: frozenset[str], what: str, country: str, rate_text: str, date_text: str
) -> tuple[str, Decimal, date]:
    if country not in countries:
        raise ValueError(f"{where}, field 'country': {country!r} is not a {what} code")
    try:
        rate = Decimal(rate_text)
    except InvalidOperation:
        raise ValueError(f"{where}, field 'rate': {rate_text!r} is not a decimal number") from None
    if not rate.is_finite() or not Decimal(0) <= rate < Decimal(1):
        raise ValueError(f"{where}, field 'rate': {rate_text!r} must be a fraction in [0, 1), e.g. 0.19")
    try:
        valid_from = date.fromisoformat(date_text)
    except ValueError:
        raise ValueError(f"{where}, field 'valid_from': {date_text!r} is not an ISO date") from None
    return country, rate, valid_from


@lru_cache(maxsize=4096)  # quotes re-check the same ID on every slider move; valid results are cached
def normalize_vat_id(tax_id: str, country: str) -> str:
    """The compact VAT ID (with its prefix, e.g. ``EL094259216``) of a customer billed in ``country``.

    Accepts the ID with or without the country prefix and with spaces, dots or
    dashes. Checks format and checksum offline only (no VIES call on the quote
    path). Raises InvalidTaxId when the ID is malformed, fails its checksum or
    belongs to another member state than ``country``.
    """
    expected = _VAT_PREFIX[country]
    number = clean(tax_id, " -./,").upper()
    prefixed_country = _PREFIX_TO_COUNTRY.get(number[:2])
    if prefixed_country == country:
        number = number[2:]
    elif prefixed_country is not None and not eu_vat.is_valid(expected + number):
        # Checked as unprefixed first: a French number may begin with a
        # two-letter check key that looks like another state's prefix.
        reason = f"it is a VAT ID of {prefixed_country}, but the billing country is {country}"
        raise InvalidTaxId(tax_id, reason)
    try:
        return expected + eu_vat.validate(expected + number)[2:]
    except ValidationError as exc:
        raise InvalidTaxId(tax_id, f"not a valid {country} VAT number: {exc}") from None
