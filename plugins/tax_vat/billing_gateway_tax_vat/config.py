"""The tax_vat plugin's settings, read from environment variables when its hooks run (at
start-up, never at import). A bad value raises ValueError naming the variable; the gateway
reports it as the plugin failing to start.

=====================================  ===========  ==========================================
Variable                               Default      Meaning
=====================================  ===========  ==========================================
BILLING_GATEWAY_VAT_TERRITORIES        (none)       non-EU VAT territories to add a calculator
                                                    for: comma-separated ``GB``, ``CH``,
                                                    ``NO`` (codes ``vat_gb``, ...)
BILLING_GATEWAY_VAT_REGISTRATIONS      (none)       of those, where the seller is registered
                                                    for VAT and so charges it
BILLING_GATEWAY_VAT_TERRITORY_RATES    bundled      a ``country,rate,valid_from`` CSV that
                                                    replaces ``territory_rates.csv``
BILLING_GATEWAY_VIES                   ``off``      ``on``: check EU VAT IDs against VIES when
                                                    billing details are saved
BILLING_GATEWAY_VIES_URL               the EU's     the VIES REST ``check-vat-number`` URL
BILLING_GATEWAY_VIES_TIMEOUT           ``5``        seconds to connect and for each read
BILLING_GATEWAY_VIES_FALLBACK          ``accept``   when VIES cannot answer: ``accept`` saves
                                                    the well-formed ID as unverified,
                                                    ``refuse`` refuses to save it
=====================================  ===========  ==========================================
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from billing_gateway_tax_vat.territories import TERRITORIES

PREFIX = "BILLING_GATEWAY_"
TERRITORIES_VAR = PREFIX + "VAT_TERRITORIES"
REGISTRATIONS_VAR = PREFIX + "VAT_REGISTRATIONS"
TERRITORY_RATES_VAR = PREFIX + "VAT_TERRITORY_RATES"
VIES_VAR = PREFIX + "VIES"
VIES_URL_VAR = PREFIX + "VIES_URL"
VIES_TIMEOUT_VAR = PREFIX + "VIES_TIMEOUT"
VIES_FALLBACK_VAR = PREFIX + "VIES_FALLBACK"

VIES_URL = "https://ec.europa.eu/taxation_customs/vies/rest-api/check-vat-number"
MAX_VIES_TIMEOUT = 60.0


class ViesFallback(enum.Enum):
    """What to do with a well-formed EU VAT ID when VIES cannot answer."""

    ACCEPT = "accept"  # save it, marked unverified; it is checked again on the next save
    REFUSE = "refuse"  # refuse to save it until VIES answers


@dataclass(frozen=True, slots=True)
class VatSettings:
    territories: tuple[str, ...] = ()
    registrations: frozenset[str] = field(default_factory=frozenset)
    territory_rates: Path | None = None  # None: the bundled territory_rates.csv
    vies: bool = False
    vies_url: str = VIES_URL
    vies_timeout: float = 5.0
    vies_fallback: ViesFallback = ViesFallback.ACCEPT

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> VatSettings:
        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        territories = _territories(TERRITORIES_VAR, get(TERRITORIES_VAR))
        registrations = _territories(REGISTRATIONS_VAR, get(REGISTRATIONS_VAR))
        strays = [t for t in registrations if t not in territories]
        if strays:
            raise ValueError(
                f"{REGISTRATIONS_VAR} names {', '.join(strays)}, which {TERRITORIES_VAR} does not "
                f"list ({', '.join(territories) or 'empty'}); add them there too"
            )
        rates = get(TERRITORY_RATES_VAR)
        switch = (get(VIES_VAR) or "off").lower()
        if switch not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{VIES_VAR} must be on or off, not {switch!r}")
        timeout_text = get(VIES_TIMEOUT_VAR) or "5"
        try:
            timeout = float(timeout_text)
        except ValueError:
            timeout = float("nan")
        if not 0 < timeout <= MAX_VIES_TIMEOUT:
            raise ValueError(
                f"{VIES_TIMEOUT_VAR} must be a number of seconds above 0 and at most "
                f"{MAX_VIES_TIMEOUT:g}, not {timeout_text!r}"
            )
        fallback_text = (get(VIES_FALLBACK_VAR) or "accept").lower()
        try:
            fallback = ViesFallback(fallback_text)
        except ValueError:
            raise ValueError(f"{VIES_FALLBACK_VAR} must be accept or refuse, not {fallback_text!r}") from None
        url = get(VIES_URL_VAR) or VIES_URL
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"{VIES_URL_VAR} must be an http(s) URL, not {url!r}")
        return cls(
            territories=territories,
            registrations=frozenset(registrations),
            territory_rates=Path(rates) if rates else None,
            vies=switch in ("on", "true", "1", "yes"),
            vies_url=url,
            vies_timeout=timeout,
            vies_fallback=fallback,
        )


def _territories(variable: str, text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    listed = [t.strip().upper() for t in text.split(",") if t.strip()]
    unknown = [t for t in listed if t not in TERRITORIES]
    if unknown:
        raise ValueError(
            f"{variable}: {', '.join(unknown)} is not a VAT territory this plugin knows "
            f"(known: {', '.join(TERRITORIES)}; EU member states are the 'vat' calculator's)"
        )
    return tuple(dict.fromkeys(listed))
