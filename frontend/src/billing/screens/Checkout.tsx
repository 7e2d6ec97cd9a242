// Step 5: Checkout. Review billing details (VAT follows them), choose how to pay (My balance
// with the balance after purchase, a saved card, or a new card, which may ask for 3-D Secure),
// review the order and Checkout Now.
import { useMemo, useState } from "react";
import type { Screen } from "../App";
import { request } from "../api";
import { money } from "../format";
import { CHECKOUT_NOW, CONFIRM_PAYMENT, ORDER_PREVIEW } from "../operations";
import type { Quote, UserError, Workspace } from "../types";
import { BillingInformation } from "./BillingInformation";
import { CardFields, type NewCard } from "./CardFields";
import { OrderPreview } from "./OrderPreview";
import { ThreeDSecure } from "./ThreeDSecure";

export type Order = { planCode: string; quote: Quote };
type Props = { apiKey: string; order: Order; workspace: Workspace; go: (s: Screen) => void; onChanged: () => void };
type Choice = { method: "balance" } | { method: "card"; cardId: string } | { method: "card"; newCard: true };

export function Checkout({ apiKey, order, workspace, go, onChanged }: Props) {
  const [quote, setQuote] = useState(order.quote);
  const [choice, setChoice] = useState<Choice>({ method: "balance" });
  const [card, setCard] = useState<NewCard>({ number: "", expMonth: "", expYear: "", cvc: "", save: true });
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const [challenge, setChallenge] = useState<string | null>(null);
  // One key per attempt at this order: a retry after a network failure never pays twice.
  const idempotencyKey = useMemo(() => crypto.randomUUID(), [quote, choice]);

  const balancePicked = choice.method === "balance";
  const blocked = balancePicked && !quote.balance.sufficient;
  const detailsMissing = (workspace.billingDetails?.missingFields ?? ["billing details"]).length > 0;

  async function requote() {
    const input = { planCode: order.planCode, emailCredits: quote.emailCredits, messagingCredits: quote.messagingCredits };
    const { quote: answer } = await request(apiKey, ORDER_PREVIEW, { input });
    if (answer.__typename === "Quote") setQuote(answer);
  }

  function paymentMethod() {
    if (choice.method === "balance") return { method: "balance" };
    if ("cardId" in choice) return { method: "card", cardId: choice.cardId };
    return {
      method: "card",
      newCard: { number: card.number.replace(/\s/g, ""), expMonth: Number(card.expMonth), expYear: Number(card.expYear), cvc: card.cvc },
      saveCard: card.save,
    };
  }

  async function checkoutNow() {
    setBusy(true);
    setResult(null);
    try {
      // The preview's token: checkout buys exactly what it showed, or says the price changed.
      const input = { quoteToken: quote.token, paymentMethod: paymentMethod(), idempotencyKey };
      const { checkout } = await request(apiKey, CHECKOUT_NOW, { input });
      await settle(checkout);
    } finally {
      setBusy(false);
    }
  }

  async function settle(answer: any) {
    switch (answer.__typename) {
      case "CheckoutSuccess":
        setResult({ ok: true, text: `Done: your workspace is on ${answer.workspace.plan.name}. Invoice ${answer.invoice?.number ?? "—"}.` });
        onChanged();
        return;
      case "PaymentActionRequired":
        setChallenge(answer.paymentId);
        return;
      case "QuoteChanged":
        setQuote(answer.quote);
        setResult({ ok: false, text: "The price changed since your preview. Review the new total and check out again." });
        return;
      case "InsufficientBalance":
        setResult({ ok: false, text: `Your balance is short by ${money(answer.shortfall)}. Top up or choose a card.` });
        return;
      case "PaymentDeclined":
        setResult({ ok: false, text: `The card was declined (${answer.declineCode}). Choose another payment method.` });
        return;
      case "PaymentPending":
        setResult({ ok: true, text: "The payment is pending; the plan changes once it is paid." });
        return;
      default:
        setResult({ ok: false, text: (answer as UserError).message });
    }
  }

  async function answerChallenge(response: string) {
    const paymentId = challenge;
    setChallenge(null);
    const { confirmPayment } = await request(apiKey, CONFIRM_PAYMENT, { paymentId, challengeResponse: response });
    await settle(confirmPayment);
  }

  return (
    <section className="checkout">
      <button className="link" onClick={() => go({ name: "customize", planCode: order.planCode })}>
        ← Customize Plan
      </button>
      <h1>Checkout</h1>
      <div className="columns">
        <div>
          <BillingInformation apiKey={apiKey} details={workspace.billingDetails} onSaved={() => (onChanged(), requote())} />
          <div className="card" data-testid="payment-methods">
            <h2>Payment Method</h2>
            <label className="method">
              <input type="radio" name="method" checked={balancePicked} onChange={() => setChoice({ method: "balance" })} />
              My balance
              <span className="muted" data-testid="balance-now">
                Balance {money(quote.balance.now)}
              </span>
              <span className={quote.balance.sufficient ? "muted" : "error"} data-testid="balance-after">
                After purchase {money(quote.balance.afterPurchase)}
              </span>
            </label>
            {workspace.cards.map((saved) => (
              <label className="method" key={saved.id}>
                <input
                  type="radio"
                  name="method"
                  checked={"cardId" in choice && choice.cardId === saved.id}
                  onChange={() => setChoice({ method: "card", cardId: saved.id })}
                />
                {saved.brand} •••• {saved.last4}
                <span className="muted">
                  expires {String(saved.expMonth).padStart(2, "0")}/{saved.expYear}
                </span>
              </label>
            ))}
            <label className="method">
              <input
                type="radio"
                name="method"
                data-testid="new-card"
                checked={"newCard" in choice}
                onChange={() => setChoice({ method: "card", newCard: true })}
              />
              Add new Credit Card
            </label>
            {"newCard" in choice && <CardFields card={card} onChange={setCard} />}
            {blocked && (
              <p className="error" data-testid="shortfall">
                Your balance is insufficient: {money(quote.dueNow.total)} is due and you have {money(quote.balance.now)}.
                Top up your balance or select another payment method.
              </p>
            )}
          </div>
        </div>
        <div>
          <OrderPreview quote={quote}>
            <button
              className="primary"
              data-testid="checkout-now"
              disabled={busy || blocked || detailsMissing}
              onClick={checkoutNow}
            >
              Checkout Now
            </button>
            {detailsMissing && <p className="muted">Complete your billing details to check out.</p>}
          </OrderPreview>
          {result && (
            <p className={result.ok ? "success" : "error"} role="status" data-testid="checkout-result">
              {result.text}
            </p>
          )}
          {result?.ok && (
            <button onClick={() => go({ name: "overview" })} data-testid="back-to-overview">
              Back to Billing
            </button>
          )}
        </div>
      </div>
      {challenge && <ThreeDSecure onAnswer={answerChallenge} />}
    </section>
  );
}
