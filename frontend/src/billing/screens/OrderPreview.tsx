// The Order Preview panel: what the order costs now and at renewal, and when each part applies.
import type { ReactNode } from "react";
import { count, day, money } from "../format";
import type { Charge, Quote } from "../types";

const KINDS: Record<Quote["kind"], string> = {
  NONE: "No change",
  NEW_PERIOD: "New subscription",
  UPGRADE: "Upgrade, applied now",
  DOWNGRADE: "Change at renewal",
  SPLIT: "Increase now, reduction at renewal",
};

export function OrderPreview({ quote, children }: { quote: Quote; children?: ReactNode }) {
  const later = quote.changes.find((c) => c.timing === "AT_RENEWAL");
  return (
    <aside className="card order-preview" data-testid="order-preview">
      <h2>Order preview</h2>
      <p>
        <strong>{quote.plan.name}</strong> · {KINDS[quote.kind]}
      </p>
      <table>
        <tbody>
          {quote.monthlyLines.map((line) => (
            <tr key={line.description}>
              <td>{line.description}</td>
              <td className="amount">{money(line.amount)}</td>
            </tr>
          ))}
          <tr className="subtotal">
            <td>Monthly price</td>
            <td className="amount">{money(quote.monthlySubtotal)}</td>
          </tr>
        </tbody>
      </table>
      {later && (
        <p className="note downgrade" data-testid="at-renewal-notice">
          From {day(later.effectiveAt)}: {later.plan.name} with {count(later.emailCredits)} email credits
          {later.messagingCredits ? ` and ${count(later.messagingCredits)} SMS/WhatsApp credits` : ""}. Your current
          plan and limits remain active until renewal.
        </p>
      )}
      {/* A new period is charged its monthly lines, shown above: only their tax and total here. */}
      <ChargeTable title="Due now" charge={quote.dueNow} testId="due-now" showLines={quote.kind !== "NEW_PERIOD"} />
      {quote.proration && (
        <p className="muted">
          Prorated for {quote.proration.daysLeft} of {quote.proration.daysInPeriod} days left in this period.
        </p>
      )}
      <p className="muted">
        Then {money(quote.dueAtRenewal.total)} at renewal on {day(quote.renewalAt)}.
      </p>
      {children}
    </aside>
  );
}

type ChargeProps = { title: string; charge: Charge; testId: string; showLines: boolean };

function ChargeTable({ title, charge, testId, showLines }: ChargeProps) {
  return (
    <table className="charge">
      <tbody>
        {showLines && charge.lines.map((line) => (
          <tr key={line.description}>
            <td>{line.description}</td>
            <td className="amount">{money(line.amount)}</td>
          </tr>
        ))}
        {charge.taxLines.map((tax) => (
          <tr key={tax.name}>
            <td>{tax.name}</td>
            <td className="amount">{tax.note && !Number(tax.amount.amount) ? "—" : money(tax.amount)}</td>
          </tr>
        ))}
        {!charge.taxCalculated && (
          <tr>
            <td colSpan={2} className="muted">
              VAT is calculated from your billing details at checkout.
            </td>
          </tr>
        )}
        <tr className="total">
          <td>{title}</td>
          <td className="amount" data-testid={testId}>
            {money(charge.total)}
          </td>
        </tr>
      </tbody>
    </table>
  );
}
