"""The default messaging-rate provider: a per-country rate card shipped as CSV.

Prices are messaging credits per message (per segment for SMS), kept as
:class:`~decimal.Decimal` so they never pick up binary-float error. The card is
read and validated once, when the plugin registers; a broken card stops
start-up with an error naming the file, line and field, rather than quoting
wrong prices later. After that the provider is immutable, so it is safe to
share between threads, and every lookup is one dict access.

CSV columns: ``country,name,sms,whatsapp_marketing,whatsapp_utility,
whatsapp_authentication``. Each price column is named after its message-type
code in lower case; an empty cell means that type is not offered there.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from gateway.plugin_api import Channel, Destination, MessageType, RateProvider, hookimpl

__all__ = [
    "DEFAULT_RATE_CARD",
    "MESSAGE_TYPES",
    "RateCard",
    "RateCardError",
    "register_rate_providers",
]

DEFAULT_RATE_CARD = Path(__file__).with_name("rate_card.csv")

# In display order; the CSV has one price column per type, named code.lower().
MESSAGE_TYPES: tuple[MessageType, ...] = (
    MessageType("SMS", "SMS", Channel.SMS, segmented=True),
    MessageType("WHATSAPP_MARKETING", "WhatsApp Marketing", Channel.WHATSAPP),
    MessageType("WHATSAPP_UTILITY", "WhatsApp Utility", Channel.WHATSAPP),
    MessageType("WHATSAPP_AUTHENTICATION", "WhatsApp Authentication", Channel.WHATSAPP),
)
_PRICE_COLUMNS = {t.code.lower(): t.code for t in MESSAGE_TYPES}
_HEADER = ["country", "name", *_PRICE_COLUMNS]

_COUNTRY = re.compile(r"[A-Z]{2}")
# Plain decimal notation only: no exponents, signs, NaN or thousands separators.
_PRICE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class RateCardError(ValueError):
    """The rate card CSV is malformed; the message says where and why."""

    def __init__(self, path: str, line: int, field: str | None, problem: str) -> None:
        where = f"{path}, line {line}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem


def load_rate_card(
    path: str | os.PathLike[str],
) -> tuple[tuple[Destination, ...], dict[tuple[str, str], Decimal]]:
    """Parse and validate a rate card.

    Returns its destinations (sorted by name) and its prices keyed by (country, type code).
    Raises :class:`RateCardError` at the first problem.
    """
    name = os.fspath(path)
    destinations: list[Destination] = []
    prices: dict[tuple[str, str], Decimal] = {}
    seen: dict[str, int] = {}  # country -> line, for duplicate errors

    # utf-8-sig: tolerate the byte-order mark spreadsheets like to write.
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise RateCardError(name, 1, None, "file is empty")
            if [h.strip() for h in header] != _HEADER:
                expected, got = ",".join(_HEADER), ",".join(header)
                raise RateCardError(name, 1, None, f"expected header {expected!r}, got {got!r}")

            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if len(row) != len(_HEADER):
                    raise RateCardError(name, line, None, f"expected {len(_HEADER)} fields, got {len(row)}")
                cells = dict(zip(_HEADER, (c.strip() for c in row), strict=False))

                country = cells["country"]
                if not _COUNTRY.fullmatch(country):
                    raise RateCardError(
                        name, line, "country", f"{country!r} is not an upper-case ISO 3166-1 alpha-2 code"
                    )
                if country in seen:
                    problem = f"duplicate {country!r} (first on line {seen[country]})"
                    raise RateCardError(name, line, "country", problem)
                seen[country] = line
                if not cells["name"]:
                    raise RateCardError(name, line, "name", "is empty")
                destinations.append(Destination(country, cells["name"]))

                for column, code in _PRICE_COLUMNS.items():
                    cell = cells[column]
                    if cell:  # empty: not offered in this country
                        prices[country, code] = _parse_price(cell, name, line, column)
        except csv.Error as exc:
            raise RateCardError(name, reader.line_num, None, f"malformed CSV: {exc}") from exc

    destinations.sort(key=lambda d: (d.name.casefold(), d.country))
    return tuple(destinations), prices


def _parse_price(cell: str, path: str, line: int, column: str) -> Decimal:
    if _PRICE.fullmatch(cell):
        return Decimal(cell)
    try:
        negative = Decimal(cell) < 0
    except (InvalidOperation, ValueError):
        negative = False
    problem = "must not be negative" if negative else "is not a plain decimal number"
    raise RateCardError(path, line, column, f"price {cell!r} {problem}")


class RateCard:
    """Rate provider backed by a CSV rate card (by default the one shipped with this plugin)."""

    code = "default"

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_RATE_CARD) -> None:
        self._destinations, self._prices = load_rate_card(path)

    def message_types(self) -> Sequence[MessageType]:
        return MESSAGE_TYPES

    def destinations(self) -> Sequence[Destination]:
        return self._destinations

    def credits_per_message(self, country: str, message_type: str) -> Decimal | None:
        """Credits per message (per segment for SMS); None for an unknown country or type, or one not offered.

        ``country`` is an upper-case ISO code and ``message_type`` a type code, as elsewhere in the gateway.
        """
        return self._prices.get((country, message_type))


@hookimpl
def register_rate_providers(register: Callable[[RateProvider], None]) -> None:
    register(RateCard())
