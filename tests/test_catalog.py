"""The catalog loader: the bundled file loads, and every broken file fails naming file, plan and field."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.core.catalog import (
    DEFAULT_CATALOG,
    CatalogError,
    CreditKind,
    PriceTier,
    load_catalog,
    parse_catalog,
)
from gateway.core.messaging import Channel

from helpers import eur

BUNDLED = DEFAULT_CATALOG.read_text(encoding="utf-8")


# ------------------------------------------------------------- the bundled file


def test_bundled_catalog_loads_with_the_four_plans_in_tier_order() -> None:
    catalog = load_catalog()
    assert catalog.currency == "EUR"
    assert [p.code for p in catalog.plans] == ["free", "email", "omnichannel", "custom"]
    assert catalog.default_plan.code == "free"
    assert catalog.sales_contact == "sales@contact.center"
    assert catalog.source == str(DEFAULT_CATALOG)
    assert catalog.plan("nope") is None


def test_bundled_plans() -> None:
    catalog = load_catalog()
    free, email, omni, custom = (catalog.plan(c) for c in ("free", "email", "omnichannel", "custom"))
    assert free and email and omni and custom

    assert free.is_free and not free.adjustable and free.purchasable
    assert free.base_price == eur("0.00") and free.channels == (Channel.EMAIL,)
    assert free.default_limit(CreditKind.EMAIL) == 1000 and free.default_limit(CreditKind.MESSAGING) == 0
    option = free.option(CreditKind.EMAIL)
    assert option and (option.min, option.max, option.adjustable) == (1000, 1000, False)

    assert email.base_price == eur("15.00") and email.adjustable and not email.is_free
    assert email.option(CreditKind.MESSAGING) is None
    option = email.option(CreditKind.EMAIL)
    assert option and (option.included, option.min, option.max, option.step, option.default) == (
        5000,
        5000,
        500000,
        5000,
        10000,
    )
    assert option.tiers == (
        PriceTier(50000, Decimal("0.0015")),
        PriceTier(200000, Decimal("0.0010")),
        PriceTier(None, Decimal("0.0007")),
    )

    assert omni.base_price == eur("39.00")
    assert omni.channels == (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP)
    messaging = omni.option(CreditKind.MESSAGING)
    assert messaging is not None
    assert (messaging.included, messaging.min, messaging.max, messaging.step, messaging.default) == (
        1000,
        1000,
        500000,
        1000,
        5000,
    )

    assert not custom.purchasable and custom.base_price is None and not custom.is_free


def test_bundled_features_are_the_select_a_plan_bullets() -> None:
    """Taken from the seed's Upgrade guide: its "With a paid plan, you can" list and its one
    line per plan on the Select a Plan step. Limits and prices are not repeated in them."""
    features = {plan.code: plan.features for plan in load_catalog().plans}
    assert features == {
        "free": ("Use the product with basic limits", "Email channel", "Upgrade to a paid plan at any time"),
        "email": (
            "For teams whose primary channel is email",
            "Send large-scale email marketing campaigns",
            "Scale your contact database without restrictive limits",
            "Adjustable monthly email credits",
        ),
        "omnichannel": (
            "Use email and messaging channels in one workspace",
            "Send large-scale email marketing campaigns",
            "Launch SMS and WhatsApp campaigns",
            "Build cross-channel automations",
            "Scale your contact database without restrictive limits",
            "Adjustable monthly email and SMS/WhatsApp credits",
        ),
        "custom": (
            "For advanced or enterprise requirements",
            "Email, SMS and WhatsApp",
            "Volumes and terms tailored with our sales team",
            "Request a quote",
        ),
    }


def test_features_are_optional() -> None:
    data = {
        "currency": "EUR",
        "default_plan": "free",
        "sales_contact": "x",
        "plans": [
            {
                "code": "free",
                "name": "Free",
                "tier": 0,
                "channels": ["email"],
                "base_price": "0",
                "adjustable": False,
            }
        ],
    }
    assert parse_catalog(data).default_plan.features == ()


def test_base_prices_carry_the_currency_decimals() -> None:
    for plan in load_catalog().plans:
        if plan.base_price is not None:
            assert plan.base_price.amount.as_tuple().exponent == -2


def test_plans_are_immutable_and_hashable() -> None:
    """Plans are shared between requests and used as cache keys."""
    first, second = load_catalog(), load_catalog()
    plan = first.plan("omnichannel")
    assert plan is not None
    assert hash(plan) == hash(second.plan("omnichannel")) and plan == second.plan("omnichannel")
    assert plan != first.plan("email")
    with pytest.raises(TypeError):
        plan.credits[CreditKind.EMAIL] = plan.credits[CreditKind.MESSAGING]  # type: ignore[index]
    with pytest.raises(AttributeError):
        plan.credits.clear()  # type: ignore[attr-defined]
    assert list(plan.credits) == [CreditKind.EMAIL, CreditKind.MESSAGING]
    assert dict(plan.credits) == {k: plan.credits[k] for k in plan.credits}


def test_credit_options_answer_lookups_like_a_mapping() -> None:
    """CreditOptions answers ``in`` and ``get`` from its dict (quotes ask on every slider move)."""
    email = load_catalog().plan("email")
    assert email is not None
    option = email.credits[CreditKind.EMAIL]
    assert CreditKind.EMAIL in email.credits and CreditKind.MESSAGING not in email.credits
    assert "email" not in email.credits  # keys are the enum members, not their values
    assert email.credits.get(CreditKind.EMAIL) is option
    assert email.credits.get(CreditKind.MESSAGING) is None
    assert email.credits.get(CreditKind.MESSAGING, option) is option
    assert email.option(CreditKind.MESSAGING) is None and email.default_limit(CreditKind.MESSAGING) == 0


def test_parse_catalog_names_its_source() -> None:
    with pytest.raises(CatalogError, match=r"^inline: catalog, field 'plans'"):
        parse_catalog(
            {"currency": "EUR", "default_plan": "free", "sales_contact": "x", "plans": []}, "inline"
        )


def test_a_price_written_without_decimals_is_stored_with_them(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, edit('base_price = "15.00"', 'base_price = "15"')))
    email = catalog.plan("email")
    assert email and str(email.base_price) == "15.00 EUR"


# ------------------------------------------------------------- broken catalogs


def edit(old: str, new: str, text: str = BUNDLED) -> str:
    assert old in text, f"the bundled catalog changed: {old!r} not found"
    return text.replace(old, new, 1)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


EMAIL_TIERS = """tiers = [
    { up_to = 50000, unit_price = "0.0015" },
    { up_to = 200000, unit_price = "0.0010" },
    { unit_price = "0.0007" },
]"""

# (case, old text, new text, plan named in the message or None for the catalog table, field, reason)
BROKEN = [
    ("missing field", 'name = "Email"\n', "", "email", "name", "is required"),
    ("missing price", 'base_price = "15.00"\n', "", "email", "base_price", "is required"),
    (
        "float price",
        'base_price = "15.00"',
        "base_price = 15.00",
        "email",
        "base_price",
        "floats are not exact",
    ),
    (
        "float tier price",
        '{ unit_price = "0.0007" }',
        "{ unit_price = 0.0007 }",
        "email",
        "credits.email.tiers[3].unit_price",
        "floats are not exact",
    ),
    (
        "negative price",
        'base_price = "39.00"',
        'base_price = "-39.00"',
        "omnichannel",
        "base_price",
        "non-negative",
    ),
    (
        "negative tier price",
        '{ up_to = 20000, unit_price = "0.0095" }',
        '{ up_to = 20000, unit_price = "-1" }',
        "omnichannel",
        "credits.messaging.tiers[1].unit_price",
        "non-negative",
    ),
    (
        "not a number",
        'base_price = "15.00"',
        'base_price = "fifteen"',
        "email",
        "base_price",
        "not a decimal number",
    ),
    ("not finite", 'base_price = "15.00"', 'base_price = "Infinity"', "email", "base_price", "non-negative"),
    (
        "too many decimals",
        'base_price = "15.00"',
        'base_price = "15.001"',
        "email",
        "base_price",
        "more decimals than EUR",
    ),
    ("wrong type", "tier = 2", 'tier = "2"', "omnichannel", "tier", "must be an integer"),
    ("bool as integer", "tier = 2", "tier = true", "omnichannel", "tier", "must be an integer"),
    (
        "step not dividing range",
        "step = 5000\ndefault = 10000",
        "step = 7000\ndefault = 12000",
        "email",
        "credits.email.step",
        "does not divide",
    ),
    (
        "zero step",
        "step = 5000\ndefault = 10000",
        "step = 0\ndefault = 10000",
        "email",
        "credits.email.step",
        "at least 1",
    ),
    (
        "default off-step",
        "default = 10000",
        "default = 12500",
        "email",
        "credits.email.default",
        "not a slider position",
    ),
    (
        "default above max",
        "default = 10000",
        "default = 600000",
        "email",
        "credits.email.default",
        "not a slider position",
    ),
    (
        "max below min",
        "max = 500000\nstep = 5000",
        "max = 1000\nstep = 5000",
        "email",
        "credits.email.max",
        "below min",
    ),
    (
        "min below included",
        "included = 5000\nmin = 5000\nmax = 500000",
        "included = 5000\nmin = 0\nmax = 500000",
        "email",
        "credits.email.min",
        "below the 5000 included",
    ),
    (
        "negative included",
        "included = 1000\n\n[[plans]]",
        "included = -1\n\n[[plans]]",
        "free",
        "credits.email.included",
        "must not be negative",
    ),
    (
        "tiers not increasing",
        '{ up_to = 200000, unit_price = "0.0010" }',
        '{ up_to = 40000, unit_price = "0.0010" }',
        "email",
        "credits.email.tiers[2].up_to",
        "must be above 50000",
    ),
    (
        "duplicate tier",
        '{ up_to = 200000, unit_price = "0.0010" }',
        '{ up_to = 50000, unit_price = "0.0010" }',
        "email",
        "credits.email.tiers[2].up_to",
        "must be above 50000",
    ),
    (
        "first tier inside the included credits",
        '{ up_to = 50000, unit_price = "0.0015" }',
        '{ up_to = 5000, unit_price = "0.0015" }',
        "email",
        "credits.email.tiers[1].up_to",
        "must be above 5000",
    ),
    (
        "tier after an open tier",
        '{ unit_price = "0.0007" },',
        '{ unit_price = "0.0007" }, { unit_price = "0.0006" },',
        "email",
        "credits.email.tiers[4]",
        "follows a tier without an end",
    ),
    (
        "last tier below max",
        '{ unit_price = "0.0007" },',
        '{ up_to = 400000, unit_price = "0.0007" },',
        "email",
        "credits.email.tiers",
        "ends at 400000, below max 500000",
    ),
    ("no tiers above included", EMAIL_TIERS, "", "email", "credits.email.tiers", "need a price tier"),
    (
        "unknown plan field",
        "adjustable = true\n",
        'adjustable = true\ncolour = "red"\n',
        "email",
        "colour",
        "not a known field",
    ),
    (
        "unknown credits field",
        "step = 5000\ndefault = 10000",
        "step = 5000\ndefault = 10000\nmaximum = 3",
        "email",
        "credits.email.maximum",
        "not a known field",
    ),
    (
        "unknown tier field",
        '{ unit_price = "0.0007" }',
        '{ unit_price = "0.0007", upto = 3 }',
        "email",
        "credits.email.tiers[3].upto",
        "not a known field",
    ),
    (
        "unknown credit kind",
        "[plans.credits.messaging]",
        "[plans.credits.sms]",
        "omnichannel",
        "credits.sms",
        "unknown credit kind",
    ),
    (
        "duplicate plan code",
        'code = "omnichannel"',
        'code = "email"',
        "email",
        "code",
        "used by more than one plan",
    ),
    (
        "features not a list",
        '"Email channel",\n    "Upgrade',
        '"Email channel",\n]\nx = [\n    "Upgrade',
        "free",
        "x",
        "not a known field",
    ),
    (
        "a feature that is not a string",
        '"Email channel",',
        "7,",
        "free",
        "features[2]",
        "must be a str",
    ),
    ("an empty feature", '"Email channel",', '"  ",', "free", "features[2]", "is empty"),
    (
        "a feature of two lines",
        '"Email channel",',
        '"Email\\nchannel",',
        "free",
        "features[2]",
        "must be one line",
    ),
    (
        "a feature with a leading space",
        '"Email channel",',
        '" Email channel",',
        "free",
        "features[2]",
        "must be one line",
    ),
    (
        "a feature too long",
        '"Email channel",',
        f'"{"x" * 121}",',
        "free",
        "features[2]",
        "121 characters; at most 120",
    ),
    (
        "a repeated feature",
        '"Email channel",',
        '"Use the product with basic limits",',
        "free",
        "features[2]",
        "repeats feature 1",
    ),
    (
        "too many features",
        'features = [\n    "Use the product',
        "features = [" + "".join(f'"f{i}", ' for i in range(11)) + '\n    "Use the product',
        "free",
        "features",
        "lists 14 features; at most 12",
    ),
    (
        "features given as a string",
        'features = [\n    "Use the product with basic limits",\n    "Email channel",\n    "Upgrade to a paid plan at any time",\n]',
        'features = "Email channel"',
        "free",
        "features",
        "must be a list",
    ),
    ("duplicate plan tier", "tier = 2", "tier = 1", "email", "tier", "used by more than one plan"),
    (
        "bad plan code",
        'code = "omnichannel"',
        'code = "Omni Channel"',
        "Omni Channel",
        "code",
        "lower-case identifier",
    ),
    (
        "unknown channel",
        'channels = ["email", "sms", "whatsapp"]',
        'channels = ["email", "fax"]',
        "omnichannel",
        "channels",
        "each must be one of",
    ),
    (
        "messaging without a messaging channel",
        'channels = ["email", "sms", "whatsapp"]',
        'channels = ["email"]',
        "omnichannel",
        "credits.messaging",
        "no SMS or WhatsApp channel",
    ),
    (
        "email credits without the email channel",
        'channels = ["email"]\nbase_price = "15.00"',
        'channels = ["sms"]\nbase_price = "15.00"',
        "email",
        "credits.email",
        "no email channel",
    ),
    (
        "fixed plan with a range",
        "included = 1000\n\n[[plans]]",
        "included = 1000\nmax = 2000\n\n[[plans]]",
        "free",
        "credits.email.max",
        "not adjustable",
    ),
    (
        "adjustable plan without a range",
        "adjustable = false\n\n[plans.credits.email]",
        "adjustable = true\n\n[plans.credits.email]",
        "free",
        "adjustable",
        "no credit limit has a range",
    ),
    (
        "unknown default plan",
        'default_plan = "free"',
        'default_plan = "gold"',
        None,
        "default_plan",
        "names no plan",
    ),
    (
        "non-free default plan",
        'default_plan = "free"',
        'default_plan = "email"',
        None,
        "default_plan",
        "must be free",
    ),
    ("unknown currency", 'currency = "EUR"', 'currency = "XYZ"', None, "currency", "unknown currency"),
    (
        "unknown top-level field",
        'currency = "EUR"',
        'currency = "EUR"\nlocale = "de"',
        None,
        "locale",
        "not a known field",
    ),
    (
        "missing sales contact",
        'sales_contact = "sales@contact.center"\n',
        "",
        None,
        "sales_contact",
        "is required",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "plan", "field", "reason"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_broken_catalog_names_file_plan_and_field(
    tmp_path: Path, old: str, new: str, plan: str | None, field: str, reason: str
) -> None:
    path = write(tmp_path, edit(old, new))
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    where = f"plan {plan!r}" if plan is not None else "catalog"
    assert message.startswith(f"{path}: {where}, field {field!r}: "), message
    assert reason in message


def test_plan_without_a_string_code_is_named_by_position(tmp_path: Path) -> None:
    path = write(tmp_path, edit('code = "email"', "code = 7"))
    with pytest.raises(CatalogError, match=re.escape(f"{path}: plan #2, field 'code': must be a str")):
        load_catalog(path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, edit('currency = "EUR"', "currency = EUR"))
    line = BUNDLED.splitlines().index('currency = "EUR"') + 1
    with pytest.raises(CatalogError, match=rf"^{re.escape(str(path))}: not valid TOML: .*line {line}\b"):
        load_catalog(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "catalog.toml"
    with pytest.raises(CatalogError, match=rf"^{re.escape(str(path))}: cannot read the catalog"):
        load_catalog(path)


def test_plans_must_be_tables(tmp_path: Path) -> None:
    path = write(tmp_path, 'currency = "EUR"\ndefault_plan = "free"\nsales_contact = "x"\nplans = [1]\n')
    with pytest.raises(CatalogError, match=r"catalog, field 'plans': entry 1 is not a table"):
        load_catalog(path)


def test_absurd_but_exact_prices_do_not_crash_the_loader(tmp_path: Path) -> None:
    """A price beyond the 28-digit Decimal context is validated, not an InvalidOperation."""
    path = write(tmp_path, edit('base_price = "15.00"', 'base_price = "1e40"'))
    email = load_catalog(path).plan("email")
    assert email and email.base_price and email.base_price.minor_units == 10**42
    path = write(tmp_path, edit('base_price = "15.00"', f'base_price = "{10**40}.001"'))
    with pytest.raises(CatalogError, match="more decimals"):
        load_catalog(path)
