"""Settings, read from ``BILLING_GATEWAY_*`` environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

import stdnum
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError

from gateway.core.numbering import INVOICE_SERIES, MAX_SERIES_LENGTH, valid_series
from gateway.core.quote_tokens import MIN_KEY_BYTES
from gateway.core.rate_limits import DEFAULT_RULES, RateLimitSpecError, Rule, parse_rules
from gateway.core.seller import Seller, demo_seller
from gateway.events.egress import EgressPolicy
from gateway.storage.encryption import check_key
from gateway.storage.rate_limits import STORES as RATE_LIMIT_STORES

PREFIX = "BILLING_GATEWAY_"
LOG_FORMATS = ("text", "json")
MIN_SECRET_KEY_BYTES = MIN_KEY_BYTES


class SettingsError(ValueError):
    """A setting has a value the gateway cannot use."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///billing-gateway.db"
    catalog_path: Path | None = None  # None: the bundled catalog
    disabled_plugins: frozenset[str] = field(default_factory=frozenset)
    seller_country: str = "DE"  # where the seller is established, for VAT
    # The seller's identity printed on invoices; None: the demo placeholder (gateway.core.seller).
    seller_name: str | None = None
    seller_address: tuple[str, ...] = ()  # one printed line each
    seller_vat_id: str | None = None  # checked with python-stdnum for seller_country
    seller_email: str | None = None
    invoice_series: str = INVOICE_SERIES  # the prefix of invoice numbers (gateway.core.numbering)
    tax_calculator: str | None = None  # None: the only one loaded (or the rule below)
    tax_calculators: str | None = None  # a routing rule by customer country (gateway.core.tax_routing)
    rate_provider: str | None = None  # None: the only one loaded
    graphiql: bool = True
    # Browser origins allowed to call the API from their pages (CORS); () sends no CORS headers.
    cors_origins: tuple[str, ...] = ()
    renewal_interval: float = 300.0  # seconds between the server's renewal runs; 0: no periodic task
    delivery_interval: float = 1.0  # seconds between the server's webhook/listener delivery runs; 0: none
    webhook_timeout: float = 10.0  # seconds for one webhook request, from connecting to the answer
    # Networks and host names webhooks may reach although not public (self-hosted receivers);
    # see gateway.events.egress. Cloud metadata services stay refused.
    webhook_allow: tuple[str, ...] = ()
    webhook_concurrency: int = 16  # webhook requests in flight at once, in all
    webhook_workspace_concurrency: int = 4  # ... and for one workspace (one slow tenant waits alone)
    egress: EgressPolicy = field(init=False, repr=False, compare=False)  # webhook_allow, read
    # Fernet keys, newest first, that encrypt secrets at rest (gateway.storage.encryption);
    # empty: a key the gateway keeps in the database (a demo, with a warning at start).
    encryption_keys: tuple[str, ...] = field(default=(), repr=False)
    webhook_secret_grace: float = 86400.0  # seconds a rotated-out webhook secret still signs
    payment_action_timeout: float = 3600.0  # seconds a payment waits for the customer (3-D Secure)
    payment_settle_timeout: float = 14 * 86400.0  # seconds at most a payment waits for its money
    dunning_schedule: tuple[float, ...] = (1.0, 3.0, 5.0, 7.0)  # days after the first failure
    dunning_grace_days: float = 14.0  # days past due before the workspace is suspended
    reconcile_interval: float = 60.0  # seconds between the server's payment reconciliation runs; 0: none
    top_up_min: Decimal = Decimal("5.00")  # in the catalog currency
    top_up_max: Decimal = Decimal("10000.00")
    log_format: str = "text"  # text | json (one JSON object per line)
    # None: /metrics is open, like the probes (bind to a private network or set a token).
    metrics_token: str | None = None
    # Signs quote tokens; None: a key the gateway makes once and keeps in the database
    # (gateway.storage.secrets). Never shown: not in repr, logs or errors.
    secret_key: str | None = field(default=None, repr=False)
    secret_key_previous: str | None = field(default=None, repr=False)  # still verifies (rotation)
    # Requests per API key and per client address (gateway.core.rate_limits), counted in this
    # process (memory) or in the database, shared by the replicas.
    rate_limits: tuple[Rule, ...] = DEFAULT_RULES
    rate_limit_store: str = "memory"
    # Database connections kept open, and opened beyond them under load (closed again after use):
    # more kept means fewer new connections under load (a worker works on request_threads
    # requests at once, beside its periodic tasks).
    db_pool_size: int = 20
    db_max_overflow: int = 10
    # GraphQL requests a server process works on at once in worker threads (the others wait their
    # turn); four times the CPUs, at least 8 (gateway.server.http.GraphQLEndpoint._limiter).
    request_threads: int = max(8, 4 * (os.cpu_count() or 1))

    def __post_init__(self) -> None:
        # Here rather than in from_env, so that overrides (the CLI's, a test's) are checked too.
        _check_seller(self)
        try:
            object.__setattr__(self, "egress", EgressPolicy.parse(self.webhook_allow))
        except ValueError as error:
            raise SettingsError(f"{PREFIX}WEBHOOK_ALLOW: {error}") from None
        for index, key in enumerate(self.encryption_keys):
            try:
                check_key(key)
            except ValueError as error:
                raise SettingsError(f"{PREFIX}ENCRYPTION_KEYS: key {index + 1} is {error}") from None
        if not 1 <= self.webhook_workspace_concurrency <= self.webhook_concurrency <= 256:
            raise SettingsError(
                f"{PREFIX}WEBHOOK_CONCURRENCY and {PREFIX}WEBHOOK_WORKSPACE_CONCURRENCY must be whole "
                "numbers with 1 <= per workspace <= in all <= 256"
            )
        object.__setattr__(self, "cors_origins", cors_origins(self.cors_origins))
        for name, secret in (
            ("SECRET_KEY", self.secret_key),
            ("SECRET_KEY_PREVIOUS", self.secret_key_previous),
        ):
            if secret is not None and len(secret.encode("utf-8")) < MIN_SECRET_KEY_BYTES:
                raise SettingsError(
                    f"{PREFIX}{name} must have at least {MIN_SECRET_KEY_BYTES} bytes, e.g. the output of "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
        if self.seller_vat_id is not None:
            object.__setattr__(self, "seller_vat_id", _vat_id(self.seller_vat_id, self.seller_country))
        if not (1 <= self.db_pool_size <= 1000 and 0 <= self.db_max_overflow <= 1000):
            raise SettingsError(
                f"{PREFIX}DB_POOL_SIZE must be from 1 to 1000 and {PREFIX}DB_MAX_OVERFLOW from 0 to 1000"
            )
        if not 1 <= self.request_threads <= 1000:
            raise SettingsError(f"{PREFIX}REQUEST_THREADS must be from 1 to 1000")
        if self.rate_limit_store not in RATE_LIMIT_STORES:
            raise SettingsError(
                f"{PREFIX}RATE_LIMIT_STORE must be memory (this process) or database (shared by the "
                f"replicas), not {self.rate_limit_store!r}"
            )

    @property
    def seller(self) -> Seller:
        """Who issues the invoices: the configured identity, or the demo placeholder."""
        if self.seller_name is None:
            return demo_seller(self.seller_country, self.invoice_series)
        return Seller(
            name=self.seller_name,
            address=self.seller_address,
            country=self.seller_country,
            vat_id=self.seller_vat_id,
            email=self.seller_email,
            invoice_series=self.invoice_series,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value.strip() if value is not None and value.strip() else None

        values: dict[str, object] = {}
        if (url := get("DATABASE_URL")) is not None:
            values["database_url"] = url
        if (catalog := get("CATALOG")) is not None:
            values["catalog_path"] = Path(catalog)
        if (disabled := get("DISABLED_PLUGINS")) is not None:
            values["disabled_plugins"] = frozenset(p.strip() for p in disabled.split(",") if p.strip())
        if (country := get("SELLER_COUNTRY")) is not None:
            if len(country) != 2 or not country.isalpha():
                raise SettingsError(
                    f"{PREFIX}SELLER_COUNTRY must be a two-letter country code, not {country!r}"
                )
            values["seller_country"] = country.upper()
        if (name := get("SELLER_NAME")) is not None:
            values["seller_name"] = name
        if (address := get("SELLER_ADDRESS")) is not None:
            values["seller_address"] = address_lines(address)
        if (vat_id := get("SELLER_VAT_ID")) is not None:
            values["seller_vat_id"] = vat_id
        if (email := get("SELLER_EMAIL")) is not None:
            values["seller_email"] = email
        if (series := get("INVOICE_SERIES")) is not None:
            values["invoice_series"] = series
        if (tax := get("TAX_CALCULATOR")) is not None:
            values["tax_calculator"] = tax
        if (routes := get("TAX_CALCULATORS")) is not None:
            values["tax_calculators"] = routes  # read against the loaded calculators by build_gateway
        if (rates := get("RATE_PROVIDER")) is not None:
            values["rate_provider"] = rates
        if (log_format := get("LOG_FORMAT")) is not None:
            if log_format.lower() not in LOG_FORMATS:
                raise SettingsError(f"{PREFIX}LOG_FORMAT must be text or json, not {log_format!r}")
            values["log_format"] = log_format.lower()
        if (metrics_token := get("METRICS_TOKEN")) is not None:
            values["metrics_token"] = metrics_token
        if (graphiql := get("GRAPHIQL")) is not None:
            if graphiql.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise SettingsError(f"{PREFIX}GRAPHIQL must be true or false, not {graphiql!r}")
            values["graphiql"] = graphiql.lower() in ("1", "true", "yes", "on")
        if (origins := get("CORS_ORIGINS")) is not None:
            values["cors_origins"] = tuple(origin.strip() for origin in origins.split(","))
        for name in ("TOP_UP_MIN", "TOP_UP_MAX"):
            if (raw := get(name)) is not None:
                try:
                    amount = Decimal(raw)
                except InvalidOperation:
                    amount = Decimal(-1)
                if not amount.is_finite() or amount <= 0:
                    raise SettingsError(f"{PREFIX}{name} must be a positive amount, not {raw!r}")
                values[name.lower()] = amount
        for name, attribute, low_open, high, meaning in (
            ("RENEWAL_INTERVAL", "renewal_interval", False, None, "0 disables the periodic renewal"),
            (
                "DELIVERY_INTERVAL",
                "delivery_interval",
                False,
                None,
                "0 disables the server's delivery worker",
            ),
            ("WEBHOOK_TIMEOUT", "webhook_timeout", True, 300.0, "above 0 and at most 300"),
            ("WEBHOOK_SECRET_GRACE", "webhook_secret_grace", False, 30 * 86400.0, "0 to 30 days"),
            (
                "PAYMENT_ACTION_TIMEOUT",
                "payment_action_timeout",
                True,
                7 * 86400.0,
                "above 0, at most 7 days",
            ),
            (
                "PAYMENT_SETTLE_TIMEOUT",
                "payment_settle_timeout",
                True,
                90 * 86400.0,
                "above 0, at most 90 days",
            ),
            (
                "RECONCILE_INTERVAL",
                "reconcile_interval",
                False,
                None,
                "0 disables the server's payment reconciliation",
            ),
        ):
            if (raw := get(name)) is not None:
                values[attribute] = _seconds(name, raw, low_open, high, meaning)
        if (keys := get("ENCRYPTION_KEYS")) is not None:
            values["encryption_keys"] = tuple(part.strip() for part in keys.split(",") if part.strip())
        if (allow := get("WEBHOOK_ALLOW")) is not None:
            values["webhook_allow"] = tuple(part.strip() for part in allow.split(",") if part.strip())
        for name in (
            "WEBHOOK_CONCURRENCY",
            "WEBHOOK_WORKSPACE_CONCURRENCY",
            "DB_POOL_SIZE",
            "DB_MAX_OVERFLOW",
            "REQUEST_THREADS",
        ):
            if (raw := get(name)) is not None:
                if not raw.isdigit():
                    raise SettingsError(f"{PREFIX}{name} must be a whole number, not {raw!r}")
                values[name.lower()] = int(raw)
        if (schedule := get("DUNNING_SCHEDULE")) is not None:
            values["dunning_schedule"] = _days_list(schedule)
        if (grace := get("DUNNING_GRACE_DAYS")) is not None:
            values["dunning_grace_days"] = _seconds(
                "DUNNING_GRACE_DAYS", grace, True, 365.0, "days, above 0 and at most 365"
            )
        if (key := get("SECRET_KEY")) is not None:
            values["secret_key"] = key
        if (previous := get("SECRET_KEY_PREVIOUS")) is not None:
            values["secret_key_previous"] = previous
        if (limits := get("RATE_LIMITS")) is not None:
            try:
                values["rate_limits"] = parse_rules(limits)
            except RateLimitSpecError as error:
                raise SettingsError(f"{PREFIX}RATE_LIMITS: {error}") from None
        if (store := get("RATE_LIMIT_STORE")) is not None:
            values["rate_limit_store"] = store.lower()
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _seconds(name: str, raw: str, zero_excluded: bool, high: float | None, meaning: str) -> float:
    """A number of seconds from a setting, or a SettingsError that says what is allowed."""
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    low_ok = seconds > 0 if zero_excluded else seconds >= 0
    high_ok = seconds <= high if high is not None else seconds < float("inf")
    if not (low_ok and high_ok):
        raise SettingsError(f"{PREFIX}{name} must be a number of seconds ({meaning}), not {raw!r}")
    return seconds


def _days_list(raw: str) -> tuple[float, ...]:
    """``BILLING_GATEWAY_DUNNING_SCHEDULE``: increasing day counts, e.g. ``1,3,5,7``; ``none`` for no retries."""
    if raw.strip().lower() == "none":
        return ()
    try:
        days = tuple(float(part) for part in raw.split(","))
    except ValueError:
        days = ()
    valid = bool(days) and all(0 < d <= 365 for d in days) and list(days) == sorted(set(days))
    if not valid:
        raise SettingsError(
            f"{PREFIX}DUNNING_SCHEDULE must be increasing day counts between 0 and 365, like 1,3,5,7 "
            f"(or none), not {raw!r}"
        )
    return days


_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_PORT = re.compile(r"(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


def cors_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    """``BILLING_GATEWAY_CORS_ORIGINS``, checked: each an exact origin as a browser sends it in
    its ``Origin`` header (``scheme://host[:port]``, lower case, no default port, no path), or
    ``*`` alone for any origin. A value that could never match is refused rather than ignored."""
    name = f"{PREFIX}CORS_ORIGINS"
    if "*" in origins:
        if origins != ("*",):
            raise SettingsError(f"{name}: `*` allows every origin and cannot be listed with others")
        return origins
    for origin in origins:
        _check_origin(name, origin)
    if len(set(origins)) != len(origins):
        raise SettingsError(f"{name} lists an origin twice")
    return origins


def _check_origin(name: str, origin: str) -> None:
    example = "like https://app.example.com or http://localhost:5173"
    if not origin:
        raise SettingsError(f"{name} has an empty entry: separate origins with single commas")
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        raise SettingsError(f"{name}: {origin!r} is not an origin ({example})") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or "*" in origin:
        raise SettingsError(
            f"{name}: {origin!r} is not an origin: it must be http:// or https:// and a host, {example}; "
            "wildcards are not patterns (`*` alone allows every origin)"
        )
    if (
        parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
        or parts.password is not None
    ):
        raise SettingsError(
            f"{name}: {origin!r} is not an origin: give scheme://host[:port] only, with no path "
            f"(not even a trailing /), query or user ({example})"
        )
    if not _HOST_PORT.fullmatch(parts.netloc.lower()):
        raise SettingsError(
            f"{name}: {origin!r} is not an origin: the host must be a DNS name (in ASCII, punycode for "
            f"others), an IPv4 or a bracketed IPv6 address, then an optional :port ({example})"
        )
    if origin != origin.lower():
        raise SettingsError(
            f"{name}: {origin!r} must be in lower case, as browsers send it: {origin.lower()!r}"
        )
    if port == _DEFAULT_PORTS[parts.scheme] and parts.netloc.endswith(f":{port}"):
        raise SettingsError(
            f"{name}: {origin!r} names the default port, which browsers leave out of Origin: "
            f"{parts.scheme}://{parts.hostname}"
        )


def address_lines(raw: str) -> tuple[str, ...]:
    """A multi-line address from one variable: lines are separated by newlines, or by a
    literal ``\\n`` where the environment cannot hold a newline (a one-line .env file)."""
    lines = raw.replace("\\n", "\n").splitlines()
    return tuple(line.strip() for line in lines if line.strip())


_MAX_TEXT = 200  # characters in the name, an address line or the email


def _check_seller(settings: Settings) -> None:
    """The seller's identity is all configured or not at all, and printable."""
    given = {
        "SELLER_VAT_ID": settings.seller_vat_id,
        "SELLER_EMAIL": settings.seller_email,
        "SELLER_ADDRESS": settings.seller_address or None,
    }
    if settings.seller_name is None:
        extra = [name for name, value in given.items() if value is not None]
        if extra:
            raise SettingsError(
                f"{PREFIX}{extra[0]} is set but {PREFIX}SELLER_NAME is not: an invoice names the seller "
                f"by its legal name; set {PREFIX}SELLER_NAME and {PREFIX}SELLER_ADDRESS"
            )
    elif not settings.seller_address:
        raise SettingsError(
            f"{PREFIX}SELLER_ADDRESS must be set with {PREFIX}SELLER_NAME: an invoice shows the seller's "
            "address (lines separated by newlines or \\n)"
        )
    for name, texts in (
        ("SELLER_NAME", (settings.seller_name,)),
        ("SELLER_ADDRESS", settings.seller_address),
        ("SELLER_EMAIL", (settings.seller_email,)),
    ):
        for text in texts:
            if text is not None and (len(text) > _MAX_TEXT or not text.isprintable()):
                raise SettingsError(
                    f"{PREFIX}{name} must be printable text of at most {_MAX_TEXT} characters per line"
                )
    if len(settings.seller_address) > 6:
        raise SettingsError(f"{PREFIX}SELLER_ADDRESS has more than 6 lines")
    email = settings.seller_email
    if email is not None and (" " in email or email.count("@") != 1 or email.startswith("@")):
        raise SettingsError(f"{PREFIX}SELLER_EMAIL must be an email address, not {email!r}")
    if not valid_series(settings.invoice_series):
        raise SettingsError(
            f"{PREFIX}INVOICE_SERIES must be upper-case letters and digits (groups joined by a hyphen, "
            f"starting with a letter, at most {MAX_SERIES_LENGTH} characters), not {settings.invoice_series!r}"
        )


# VAT numbers of EU member states start with their ISO code, except Greece's ("EL").
_VAT_PREFIX = {"GR": "EL"}


def _vat_id(raw: str, country: str) -> str:
    """The seller's VAT ID as printed, checked (format and check digits, offline) with
    python-stdnum for the seller's country; a SettingsError names the variable."""
    prefix = _VAT_PREFIX.get(country, country)
    try:
        if country.lower() in eu_vat.MEMBER_STATES:
            number = eu_vat.validate(raw)
            if not number.startswith(prefix):
                raise SettingsError(
                    f"{PREFIX}SELLER_VAT_ID {raw!r} is not a VAT number of {PREFIX}SELLER_COUNTRY "
                    f"{country}: it must start with {prefix}"
                )
            return str(number)
        module = stdnum.get_cc_module(country.lower(), "vat")
        if module is None:
            return raw  # python-stdnum knows no VAT format for the country: printed as given
        module.validate(raw)
        return raw
    except ValidationError as error:
        raise SettingsError(
            f"{PREFIX}SELLER_VAT_ID {raw!r} is not a valid VAT number for {country}: {error}"
        ) from None
