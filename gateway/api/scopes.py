"""Which scope each root field needs, checked in one place for every operation.

Every root field of Query, Mutation and Subscription is listed in :data:`ROOT_SCOPES`; the
schema refuses to build if one is missing (so a new field cannot forget), and README's scopes
table is the same list. A field needs one of:

* a :class:`~gateway.services.keys.Scope`: a request with a workspace API key lacking it gets
  ``ScopeRequired`` in the field's result union (every such Query and Mutation field has it,
  which the schema also checks) and nothing runs. A subscription is refused with an error.
* :data:`PUBLIC`: the same answer for anyone, with or without a key (the catalog, the
  calculator); any key, whatever its scopes, may ask.
* :data:`OPERATOR`: an operator key, which its own guard checks (``errors.as_operator``).

Requests without a workspace key are not this module's business: the fields' sign-in guards
answer them (AuthenticationRequired), as before scopes.
"""

from __future__ import annotations

from typing import Any, Final

import strawberry
from graphql import GraphQLError, GraphQLUnionType, get_named_type

from gateway.api import errors as e
from gateway.services.keys import Scope

PUBLIC: Final = "public"
OPERATOR: Final = "operator"
Access = Scope | str  # a Scope, PUBLIC or OPERATOR

_READ, _LIVE, _BILLING, _USAGE, _WEBHOOKS = Scope.READ, Scope.LIVE, Scope.BILLING, Scope.USAGE, Scope.WEBHOOKS

ROOT_SCOPES: Final[dict[str, dict[str, Access]]] = {
    "Query": {
        "plans": PUBLIC,
        "messageTypes": PUBLIC,
        "destinations": PUBLIC,
        "estimate": PUBLIC,
        "plugins": PUBLIC,
        "webhookEventTypes": PUBLIC,
        "workspace": _READ,
        "selectPlan": _READ,
        "quote": _READ,
        "webhookEndpoints": _WEBHOOKS,
    },
    "Mutation": {
        "estimate": PUBLIC,
        "selectPlan": _READ,
        "quote": _READ,
        "checkout": _BILLING,
        "confirmPayment": _BILLING,
        "payInvoice": _BILLING,
        "topUpBalance": _BILLING,
        "addCard": _BILLING,
        "removeCard": _BILLING,
        "setDefaultPaymentMethod": _BILLING,
        "updateBillingDetails": _BILLING,
        "cancelScheduledChange": _BILLING,
        "requestCustomQuote": _BILLING,
        "recordUsage": _USAGE,
        "createWebhookEndpoint": _WEBHOOKS,
        "updateWebhookEndpoint": _WEBHOOKS,
        "rotateWebhookSecret": _WEBHOOKS,
        "deleteWebhookEndpoint": _WEBHOOKS,
        "redeliverEvent": _WEBHOOKS,
        "refundPayment": OPERATOR,
    },
    "Subscription": {
        "events": _LIVE,
        "planChanged": _LIVE,
    },
}


def required(root_type: str, field_name: str) -> Access:
    """What the root field needs; a KeyError for a field nobody listed (a bug the schema catches)."""
    return ROOT_SCOPES[root_type][field_name]


def missing_scope(scopes: frozenset[Scope], root_type: str, field_name: str) -> Scope | None:
    """The scope a workspace key with ``scopes`` lacks for this root field, or None."""
    need = required(root_type, field_name)
    return need if isinstance(need, Scope) and need not in scopes else None


def refusal_message(scope: Scope, field_name: str) -> str:
    return f"this API key lacks the {str(scope)!r} scope, which {field_name} needs"


def check_schema(schema: strawberry.Schema) -> None:
    """Every root field has a declared access, every declared one exists, and every Query or
    Mutation field that needs a scope can answer ScopeRequired. Raises on the first gap."""
    graphql_schema = schema._schema
    for root_type, fields in ROOT_SCOPES.items():
        root = graphql_schema.get_type(root_type)
        assert root is not None and hasattr(root, "fields"), root_type
        declared, present = set(fields), set(root.fields)
        if declared != present:
            raise RuntimeError(
                f"{root_type} fields without a declared scope: {sorted(present - declared)}; "
                f"declared but absent: {sorted(declared - present)} (see gateway.api.scopes)"
            )
        if root_type == "Subscription":
            continue  # a stream has no result union: a refused subscribe gets an error
        for name, access in fields.items():
            result = get_named_type(root.fields[name].type)
            if isinstance(access, Scope) and not (
                isinstance(result, GraphQLUnionType) and "ScopeRequired" in {t.name for t in result.types}
            ):
                raise RuntimeError(f"{root_type}.{name} needs a scope but cannot answer ScopeRequired")


def refusal(context: Any, root_type: str, field_name: str) -> Any | None:
    """ScopeRequired for a root Query or Mutation field whose scope the request's workspace key
    lacks, else None (and for requests without a workspace key: public fields, operators)."""
    if getattr(context, "workspace_id", None) is None:
        return None
    scope = missing_scope(context.scopes, root_type, field_name)
    if scope is None:
        return None
    return e.scope_required(str(scope), refusal_message(scope, field_name))


def subscription_refused(scope: Scope, field_name: str) -> GraphQLError:
    return GraphQLError(
        refusal_message(scope, field_name), extensions={"code": "SCOPE_REQUIRED", "scope": str(scope)}
    )
