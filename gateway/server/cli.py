"""The ``billing-gateway`` command: serve, operate, export the schema and compare it with a release."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from gateway.core.catalog import CatalogError
from gateway.core.statuses import DeliveryStatus
from gateway.plugin_api.registry import PluginError
from gateway.server.settings import PREFIX, Settings, SettingsError
from gateway.services.keys import Scope, public_part
from gateway.storage import faults

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gateway.server.app import Gateway

DEMO_WORKSPACE = "Demo workspace"


@contextmanager
def _gateway(args: argparse.Namespace) -> Iterator[Gateway]:
    """The gateway for one command; its connections are closed when the command ends."""
    from gateway.server.app import build_gateway

    overrides = {"database_url": args.database_url} if getattr(args, "database_url", None) else {}
    gateway = build_gateway(Settings.from_env(**overrides))
    try:
        yield gateway
    finally:
        gateway.close()


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.server.http import create_app
    from gateway.server.observability import configure_logging
    from gateway.server.workers import ServeOptions, serve_one, serve_workers

    workers = args.workers if args.workers is not None else _workers_from_env()
    options = ServeOptions(args.host, args.port, args.log_level, workers)
    with _gateway(args) as gateway:  # migrates and checks every setting once, before any worker starts
        configure_logging(args.log_level, gateway.settings.log_format)
        if args.demo:
            key, created = ensure_demo_workspace(gateway)
            print(f"Demo workspace {'created' if created else 'found'}: {DEMO_WORKSPACE}")
            print(f"Demo API key (new on every start, shown once): {key}")
            # The key in the fragment (#key=...): browsers send no fragment to any server.
            print(f"Billing page: http://{args.host}:{args.port}/billing#key={key}")
        else:
            print(f"Billing page: http://{args.host}:{args.port}/billing")
        print(f"GraphQL and GraphiQL: http://{args.host}:{args.port}/graphql", flush=True)
        if workers == 1:
            serve_one(create_app(gateway), options)
            return 0
    # Each worker builds its own gateway (pool, notifier, periodic tasks) from the same settings.
    overrides: dict[str, object] = (
        {"database_url": args.database_url} if getattr(args, "database_url", None) else {}
    )
    return serve_workers(functools.partial(worker_app, args.log_level, overrides), options)


def worker_app(log_level: str, overrides: dict[str, object]) -> Any:
    """The app of one ``serve --workers`` process (module-level: workers are spawned)."""
    from gateway.server.app import build_gateway
    from gateway.server.http import create_app
    from gateway.server.observability import configure_logging

    gateway = build_gateway(Settings.from_env(None, **overrides), run_migrations=False)  # the parent migrated
    configure_logging(log_level, gateway.settings.log_format)
    return create_app(gateway)


def _workers(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_WORKERS}, not {raw!r}")
    return int(raw)


def _workers_from_env() -> int:
    raw = os.environ.get(f"{PREFIX}WORKERS", "").strip() or "1"
    try:
        return _workers(raw)
    except argparse.ArgumentTypeError as error:
        raise SettingsError(f"{PREFIX}WORKERS {error}") from None


def ensure_demo_workspace(gateway: Gateway) -> tuple[str, bool]:
    """Find or create the demo workspace and issue it a fresh API key."""
    from gateway.services.keys import issue_api_key
    from gateway.services.workspaces import create_workspace
    from gateway.storage.db import Workspace

    now = gateway.clock()
    with gateway.sessions.begin() as session:
        workspace = session.scalar(select(Workspace).where(Workspace.name == DEMO_WORKSPACE))
        created = workspace is None
        if workspace is None:
            workspace = create_workspace(session, gateway.catalog, DEMO_WORKSPACE, now)
        key = issue_api_key(session, workspace.id, now, name="demo")
    return key.secret, created


def cmd_create_workspace(args: argparse.Namespace) -> int:
    from gateway.core.pricing import PricingError
    from gateway.services.keys import issue_api_key
    from gateway.services.workspaces import create_workspace

    with _gateway(args) as gateway:
        now = gateway.clock()
        try:
            with gateway.sessions.begin() as session:
                workspace = create_workspace(
                    session,
                    gateway.catalog,
                    args.name,
                    now,
                    plan_code=args.plan,
                    email_credits=args.email_credits,
                    messaging_credits=args.messaging_credits,
                )
                key = issue_api_key(session, workspace.id, now, name="cli")
        except (ValueError, PricingError) as error:  # unknown plan, or limits the plan does not accept
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(f"workspace: {workspace.id}")
    print(f"plan: {workspace.plan_code}")
    print(f"api key: {key.secret}")
    return 0


def cmd_create_key(args: argparse.Namespace) -> int:
    from gateway.services.keys import ALL_SCOPES, issue_api_key, scopes_text
    from gateway.storage.db import Workspace

    scopes = frozenset(map(Scope, args.scope)) if args.scope else ALL_SCOPES
    with _gateway(args) as gateway, gateway.sessions.begin() as session:
        if session.get(Workspace, args.workspace) is None:
            print(f"error: no workspace {args.workspace!r}", file=sys.stderr)
            return 2
        key = issue_api_key(session, args.workspace, gateway.clock(), name=args.name, scopes=scopes)
    print(f"api key: {key.secret}")
    print(f"scopes: {scopes_text(scopes)}")
    return 0


def cmd_revoke_key(args: argparse.Namespace) -> int:
    from gateway.services.keys import revoke_api_key

    return _revoke(args, revoke_api_key, "API key", "key")


def _revoke(
    args: argparse.Namespace,
    revoke: Callable[[Session, str, datetime], str | None],
    kind: str,
    done: str,
) -> int:
    """Revoke ``args.key`` with ``revoke``; exit 2 when no active key of ``kind`` matches."""
    with _gateway(args) as gateway, gateway.sessions.begin() as session:
        revoked = revoke(session, args.key, gateway.clock())
    if revoked is None:
        print(f"error: no active {kind} {public_part(args.key)!r}", file=sys.stderr)
        return 2
    print(f"revoked {done} {revoked}")
    return 0


def cmd_operator_keys_create(args: argparse.Namespace) -> int:
    """Issue an operator key: it reaches the operators' GraphQL fields (refundPayment), no workspace's."""
    from gateway.services.keys import issue_operator_key

    with _gateway(args) as gateway, gateway.sessions.begin() as session:
        key = issue_operator_key(session, gateway.clock(), args.name)
    print(f"operator key {key.prefix} (id {key.id}), shown once: {key.secret}")
    return 0


def cmd_operator_keys_revoke(args: argparse.Namespace) -> int:
    from gateway.services.keys import revoke_operator_key

    return _revoke(args, revoke_operator_key, "operator key", "operator key")


def cmd_migrate(args: argparse.Namespace) -> int:
    with _gateway(args):  # building the gateway runs the migrations
        pass
    print("database is up to date")
    return 0


def _instant(text: str) -> datetime:
    """An ISO 8601 instant for --now; without an offset it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date and time: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive amount: {text!r}")
    return value


def cmd_renew(args: argparse.Namespace) -> int:
    """Renew every workspace whose period has ended; exit 1 if any renewal hit an unexpected error.

    A declined renewal payment is not an error of the command: the workspace is past due
    and the line says so.
    """
    from gateway.services.renewal import RenewalStatus, renew_due

    with _gateway(args) as gateway:
        now = args.now or gateway.clock()
        print(f"renewing periods that ended by {now.isoformat()}")
        results = renew_due(gateway, now)
    for result in results:
        print(result.describe())
    counts = {status: sum(r.status is status for r in results) for status in RenewalStatus}
    if not results:
        print("nothing to renew")
    else:
        print(
            ", ".join(
                f"{count} {status.value.replace('_', ' ')}" for status, count in counts.items() if count
            )
        )
    return 1 if counts[RenewalStatus.ERROR] else 0


def cmd_deliveries_list(args: argparse.Namespace) -> int:
    """Pending and failed deliveries (webhooks and event listeners), oldest first."""
    from gateway.events.delivery import list_deliveries

    statuses = args.status or [DeliveryStatus.PENDING, DeliveryStatus.FAILED]
    with _gateway(args) as gateway, gateway.sessions() as session:
        lines = list_deliveries(session, statuses, args.limit)
    if not lines:
        print(f"no {' or '.join(statuses)} deliveries")
    for line in lines:
        due = (
            line.next_attempt_at.isoformat()
            if line.next_attempt_at and line.status == DeliveryStatus.PENDING
            else "-"
        )
        last = (f"{line.last_status_code} " if line.last_status_code else "") + (line.last_error or "")
        print(
            f"{line.id}  {line.status:<9} attempts {line.attempts:<2}  next {due}  {line.event_type} "
            f"#{line.sequence} of {line.workspace_id}  -> {line.target}" + (f"  last: {last}" if last else "")
        )
    return 0


def cmd_deliveries_replay(args: argparse.Namespace) -> int:
    """Reset failed (or named) deliveries to pending, due now, with a fresh retry schedule."""
    from gateway.events.delivery import replay

    if not args.failed and not args.id:
        print("error: say what to replay: --failed, --id ID, or both", file=sys.stderr)
        return 2
    with _gateway(args) as gateway, gateway.write_sessions.begin() as session:
        count = replay(session, gateway.clock(), failed=args.failed, ids=args.id or ())
    print(
        f"{count} deliver{'y' if count == 1 else 'ies'} queued again, due now "
        "(`billing-gateway deliveries run` or the server sends them)"
    )
    return 0


def cmd_webhooks_reencrypt(args: argparse.Namespace) -> int:
    """Encrypt every webhook secret with the newest key of BILLING_GATEWAY_ENCRYPTION_KEYS."""
    from gateway.events.endpoints import reencrypt_secrets

    with _gateway(args) as gateway, gateway.write_sessions.begin() as session:
        changed, unchanged = reencrypt_secrets(session)
    print(
        f"{changed} webhook secret{'s' if changed != 1 else ''} re-encrypted with the newest key, "
        f"{unchanged} already under it; older keys can now be removed from BILLING_GATEWAY_ENCRYPTION_KEYS"
    )
    return 0


def cmd_webhooks_new_key(args: argparse.Namespace) -> int:
    """Print a new encryption key, to put first in BILLING_GATEWAY_ENCRYPTION_KEYS."""
    from gateway.storage.encryption import new_key

    print(new_key())
    return 0


def cmd_deliveries_run(args: argparse.Namespace) -> int:
    """Send what is due once (cron, tests); exit 0 whatever the receivers answered."""
    from gateway.events.delivery import deliver_due

    with _gateway(args) as gateway:
        counts = deliver_due(gateway, args.now or gateway.clock(), args.limit)
    print(
        f"{counts.claimed} due: {counts.delivered} delivered, {counts.retrying} to retry, "
        f"{counts.failed} failed"
    )
    return 0


def cmd_dunning(args: argparse.Namespace) -> int:
    """Retry the open invoices that are due and suspend workspaces past due beyond the grace, once."""
    from gateway.services.dunning import run_dunning

    with _gateway(args) as gateway:
        steps = run_dunning(gateway, args.now or gateway.clock())
    for step in steps:
        print(step.describe())
    print(f"{len(steps)} dunning step{'' if len(steps) == 1 else 's'}")
    return 0


def cmd_prices_notify(args: argparse.Namespace) -> int:
    """Give existing subscribers notice of newer price versions whose rule moves them after notice."""
    from gateway.services.price_changes import give_notice

    with _gateway(args) as gateway:
        notices = give_notice(gateway, args.now or gateway.clock(), args.limit)
    for notice in notices:
        print(notice.describe())
    print(f"{len(notices)} notice{'' if len(notices) == 1 else 's'} given")
    return 0


def cmd_payments_reconcile(args: argparse.Namespace) -> int:
    """Settle open payments once: ask methods about unanswered ones, expire the overdue, refund what is owed."""
    from gateway.services.settlement import reconcile

    with _gateway(args) as gateway:
        now = args.now or gateway.clock()
        done = reconcile(gateway, now, args.limit)
    for step in done:
        print(step.describe())
    print(f"{len(done)} payment{'' if len(done) == 1 else 's'} settled or changed")
    return 0


def cmd_payments_mark_paid(args: argparse.Namespace) -> int:
    """Record that the money of a payment that settles later (a bank transfer) arrived."""
    from gateway.services.settlement import CannotSettle, mark_paid

    with _gateway(args) as gateway:
        try:
            outcome = mark_paid(gateway, args.payment_id, args.note or "")
        except CannotSettle as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(f"payment {args.payment_id}: {type(outcome).__name__}")
    return 0


def cmd_payments_refund(args: argparse.Namespace) -> int:
    """Refund a succeeded payment in full or in part, to its method or to the balance, with a credit note."""
    import secrets

    from gateway.core.errors import DomainError
    from gateway.core.statuses import RefundDestination, RefundStatus
    from gateway.services.refunds import refund_payment

    key = args.key or f"cli-{secrets.token_hex(8)}"
    with _gateway(args) as gateway:
        try:
            outcome = refund_payment(
                gateway, args.payment_id, args.amount, RefundDestination(args.to), args.reason or "", key
            )
        except DomainError as error:
            print(f"error: {error.message}", file=sys.stderr)
            return 1
    print(outcome.describe())
    if outcome.status == RefundStatus.PENDING:
        print(f"the payment method did not answer; run again with --key {key} to finish it")
    return 1 if outcome.status == RefundStatus.FAILED else 0


def cmd_export_schema(args: argparse.Namespace) -> int:
    from gateway.api.schema import print_sdl

    sdl = print_sdl()
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl, encoding="utf-8")
    return 0


def cmd_trusted_documents(args: argparse.Namespace) -> int:
    """The trusted documents' manifest: a JSON object of id to text (the persisted documents
    format clients and tools read), or the ids and operation names with --ids."""
    from gateway.api.trusted import registry

    documents = sorted(registry().values(), key=lambda d: (d.file, d.operation))
    if args.ids:
        for document in documents:
            print(f"{document.id}  {document.operation}  ({document.file})")
    else:
        print(json.dumps({d.id: d.text for d in documents}, indent=2, ensure_ascii=False))
    return 0


def cmd_schema_diff(args: argparse.Namespace) -> int:
    from graphql import GraphQLError, GraphQLSchema, build_schema
    from graphql.utilities import find_breaking_changes, find_dangerous_changes

    schemas: list[GraphQLSchema] = []
    for path in (args.old, args.new):
        try:
            schemas.append(build_schema(Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, GraphQLError, TypeError) as error:  # TypeError: invalid SDL
            print(f"error: {path}: {error}", file=sys.stderr)
            return 2
    old, new = schemas
    breaking, dangerous = find_breaking_changes(old, new), find_dangerous_changes(old, new)
    for kind, changes in (("breaking", breaking), ("dangerous", dangerous)):
        for change in changes:
            print(f"{kind}: {change.type.name}: {change.description}")
    if breaking or dangerous:
        print(
            f"{len(breaking)} breaking and {len(dangerous)} dangerous changes from {args.old} to {args.new}"
        )
    return 1 if breaking and args.fail_on_breaking else 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="billing-gateway", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--database-url", help="overrides BILLING_GATEWAY_DATABASE_URL")
        return p

    serve = with_db(commands.add_parser("serve", help="run the GraphQL server"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="create a demo workspace and print an API key")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="worker processes sharing the port (default: BILLING_GATEWAY_WORKERS, else 1); about one per core",
    )
    serve.set_defaults(func=cmd_serve)

    workspace = with_db(commands.add_parser("create-workspace", help="create a workspace and an API key"))
    workspace.add_argument("name")
    workspace.add_argument("--plan", help="start on this plan instead of the default (migrating customers)")
    workspace.add_argument("--email-credits", type=int)
    workspace.add_argument("--messaging-credits", type=int)
    workspace.set_defaults(func=cmd_create_workspace)

    key = with_db(commands.add_parser("create-key", help="issue another API key for a workspace"))
    key.add_argument("workspace", help="workspace id")
    key.add_argument("--name", default="cli")
    key.add_argument(
        "--scope",
        action="append",
        choices=[str(scope) for scope in Scope],
        help="what the key may do; repeat for several (default: every scope). A browser page's key: "
        "--scope read --scope live, plus --scope billing if it checks out",
    )
    key.set_defaults(func=cmd_create_key)

    revoke = with_db(commands.add_parser("revoke-key", help="revoke an API key: the whole key or its prefix"))
    revoke.add_argument("key", help="the key (bgw_<prefix>_...) or its 12-character prefix")
    revoke.set_defaults(func=cmd_revoke_key)

    operator_keys = commands.add_parser("operator-keys", help="keys for the operators' GraphQL fields")
    operator_key_commands = operator_keys.add_subparsers(dest="operator_keys_command", required=True)
    creating = with_db(
        operator_key_commands.add_parser("create", help="issue an operator key (printed once)")
    )
    creating.add_argument("--name", required=True, help="who or what holds it, to tell keys apart")
    creating.set_defaults(func=cmd_operator_keys_create)
    revoking = with_db(operator_key_commands.add_parser("revoke", help="revoke an operator key"))
    revoking.add_argument("key", help="the key (bgo_<prefix>_...), its 12-character prefix or its id")
    revoking.set_defaults(func=cmd_operator_keys_revoke)

    migrate = with_db(commands.add_parser("migrate", help="bring the database schema up to date"))
    migrate.set_defaults(func=cmd_migrate)

    renew = with_db(
        commands.add_parser(
            "renew", help="renew every workspace whose period has ended (charge, invoice, reset credits)"
        )
    )
    renew.add_argument(
        "--now",
        type=_instant,
        help="renew as of this ISO 8601 instant instead of the clock "
        "(catching up, tests); without an offset: UTC",
    )
    renew.set_defaults(func=cmd_renew)

    deliveries = commands.add_parser("deliveries", help="webhook and event-listener deliveries")
    delivery_commands = deliveries.add_subparsers(dest="deliveries_command", required=True)
    listing = with_db(delivery_commands.add_parser("list", help="list pending and failed deliveries"))
    listing.add_argument(
        "--status",
        action="append",
        choices=[s.value for s in DeliveryStatus],
        help="only these (repeatable); default: pending and failed",
    )
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=cmd_deliveries_list)
    replaying = with_db(
        delivery_commands.add_parser(
            "replay", help="queue deliveries again, due now, with a fresh retry schedule"
        )
    )
    replaying.add_argument("--failed", action="store_true", help="every failed delivery")
    replaying.add_argument("--id", action="append", help="this delivery, whatever its status (repeatable)")
    replaying.set_defaults(func=cmd_deliveries_replay)
    running = with_db(delivery_commands.add_parser("run", help="send the deliveries that are due, once"))
    running.add_argument("--limit", type=int, default=100)
    running.add_argument("--now", type=_instant, help="as of this ISO 8601 instant instead of the clock")
    running.set_defaults(func=cmd_deliveries_run)

    webhooks = commands.add_parser("webhooks", help="webhook secrets at rest")
    webhook_commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    with_db(
        webhook_commands.add_parser(
            "reencrypt",
            help="encrypt every webhook secret with the newest key of BILLING_GATEWAY_ENCRYPTION_KEYS "
            "(after adding a key in front)",
        )
    ).set_defaults(func=cmd_webhooks_reencrypt)
    webhook_commands.add_parser(
        "new-key", help="print a new key for BILLING_GATEWAY_ENCRYPTION_KEYS"
    ).set_defaults(func=cmd_webhooks_new_key)

    dunning = with_db(
        commands.add_parser(
            "dunning", help="retry open invoices that are due, suspend workspaces past due beyond the grace"
        )
    )
    dunning.add_argument("--now", type=_instant, help="as of this ISO 8601 instant instead of the clock")
    dunning.set_defaults(func=cmd_dunning)

    prices = commands.add_parser("prices", help="price versions and existing subscribers")
    price_commands = prices.add_subparsers(dest="prices_command", required=True)
    notifying = with_db(
        price_commands.add_parser(
            "notify",
            help="give subscribers on an earlier price notice of the newest version whose rule is "
            '"notice" (the server does this with each renewal run)',
        )
    )
    notifying.add_argument("--limit", type=int, default=500, help="at most this many workspaces per plan")
    notifying.add_argument("--now", type=_instant, help="as of this ISO 8601 instant instead of the clock")
    notifying.set_defaults(func=cmd_prices_notify)

    payments = commands.add_parser("payments", help="settle open payments")
    payment_commands = payments.add_subparsers(dest="payments_command", required=True)
    reconciling = with_db(
        payment_commands.add_parser(
            "reconcile",
            help="ask payment methods about unanswered payments, expire overdue ones, make owed refunds",
        )
    )
    reconciling.add_argument("--limit", type=int, default=500)
    reconciling.add_argument("--now", type=_instant, help="as of this ISO 8601 instant instead of the clock")
    reconciling.set_defaults(func=cmd_payments_reconcile)
    marking = with_db(
        payment_commands.add_parser(
            "mark-paid", help="record that a pending payment's money arrived (bank transfer, pay by invoice)"
        )
    )
    marking.add_argument("payment_id")
    marking.add_argument("--note", help="what you saw, e.g. the bank statement line (logged)")
    marking.set_defaults(func=cmd_payments_mark_paid)
    refunding = with_db(
        payment_commands.add_parser(
            "refund", help="refund a succeeded payment in full or in part, with a credit note"
        )
    )
    refunding.add_argument("payment_id")
    refunding.add_argument("--amount", type=_amount, help="how much (default: all that is left)")
    refunding.add_argument(
        "--to", choices=["method", "balance"], default="method", help="where the money goes"
    )
    refunding.add_argument("--reason", help="printed on the credit note")
    refunding.add_argument("--key", help="idempotency key: the same key again never refunds twice")
    refunding.set_defaults(func=cmd_payments_refund)

    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--output", "-o", default="-")
    export.set_defaults(func=cmd_export_schema)

    documents = commands.add_parser(
        "trusted-documents",
        help="print the trusted documents (schema/operations, by SHA-256) a client may send by id",
    )
    documents.add_argument("--ids", action="store_true", help="only the ids and operation names")
    documents.set_defaults(func=cmd_trusted_documents)

    diff = commands.add_parser(
        "schema-diff",
        help="print the breaking and dangerous changes from one SDL file to another "
        "(e.g. schema/released/0.1.0.graphql to schema/schema.graphql)",
    )
    diff.add_argument("old", help="the SDL clients were built against, e.g. the last release's")
    diff.add_argument("new", help="the SDL to compare with it")
    diff.add_argument(
        "--fail-on-breaking",
        action="store_true",
        help="exit with status 1 when there is a breaking change (default: report only, status 0)",
    )
    diff.set_defaults(func=cmd_schema_diff)
    return root


MAX_WORKERS = 64
EXIT_DATABASE_UNAVAILABLE = 3  # worth retrying, unlike the 2 of a configuration error


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (CatalogError, PluginError, SettingsError) as error:
        print(f"billing-gateway: cannot start: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if not faults.unavailable(error):
            raise
        url = getattr(args, "database_url", None) or Settings.from_env().database_url
        print(
            f"error: cannot reach the database at {faults.masked(url)}: {faults.describe(error)}",
            file=sys.stderr,
        )
        return EXIT_DATABASE_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
