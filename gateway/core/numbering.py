"""Gap-free document numbers: one series per seller and kind of document, restarting each year.

A number is ``{SERIES}-{YYYY}-{NNNNNN}``: the series prefix, the year of the document's date
(UTC) and its place in that year's series, at least six digits (``INV-2026-000042``). Invoices
use the series ``BILLING_GATEWAY_INVOICE_SERIES`` (``INV`` by default); credit notes will use
their own (``CN-2026-000001``). A second seller sharing the database configures its own
series, so each seller's numbers are gap-free on their own.

The counter behind a series and year is named ``document:{SERIES}:{YYYY}`` (a row of the
``counters`` table, incremented under its row lock: see ``gateway.storage.counters``). Before
series existed invoices were counted under ``invoice:{YYYY}`` and numbered ``INV-YYYY-NNNNNN``;
migration 0007 renamed those rows to ``document:INV:{YYYY}``, so the INV series goes on where
it stopped and every number already issued keeps its meaning.
"""

from __future__ import annotations

import re

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"
MAX_SERIES_LENGTH = 16  # the number column holds 32 characters: 16 + "-YYYY-" + up to 10 digits

_SERIES = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*")


def valid_series(series: str) -> bool:
    """Upper-case letters and digits in groups joined by single hyphens, starting with a
    letter, at most 16 characters: ``INV``, ``CN``, ``ACME-INV``."""
    return len(series) <= MAX_SERIES_LENGTH and _SERIES.fullmatch(series) is not None


def counter_name(series: str, year: int) -> str:
    """The counter that numbers ``series`` in ``year``."""
    return f"document:{series}:{year:04d}"


def document_number(series: str, year: int, value: int) -> str:
    """The printed number of the ``value``-th document of ``series`` in ``year``."""
    return f"{series}-{year:04d}-{value:06d}"
