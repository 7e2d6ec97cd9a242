// Top up My balance with a card ("ensure your account has a positive balance").
import { useMemo, useState } from "react";
import { request } from "../api";
import { TOP_UP } from "../operations";
import type { Workspace } from "../types";
import { CardFields, type NewCard } from "./CardFields";

export function TopUp({ apiKey, workspace, onDone }: { apiKey: string; workspace: Workspace; onDone: () => void }) {
  const [open, setOpen] = useState(false);
  const [amount, setAmount] = useState("50.00");
  const [cardId, setCardId] = useState<string>(workspace.cards[0]?.id ?? "new");
  const [card, setCard] = useState<NewCard>({ number: "", expMonth: "", expYear: "", cvc: "", save: false });
  const [message, setMessage] = useState<string | null>(null);
  const idempotencyKey = useMemo(() => crypto.randomUUID(), [amount, cardId, card]);

  async function topUp(e: React.FormEvent) {
    e.preventDefault();
    const paymentMethod =
      cardId === "new"
        ? {
            method: "card",
            newCard: { number: card.number.replace(/\s/g, ""), expMonth: Number(card.expMonth), expYear: Number(card.expYear), cvc: card.cvc },
            saveCard: card.save,
          }
        : { method: "card", cardId };
    const { topUpBalance: answer } = await request(apiKey, TOP_UP, { input: { amount, paymentMethod, idempotencyKey } });
    if (answer.__typename === "TopUpSuccess") {
      setMessage(`Balance topped up: ${answer.balance.amount} ${answer.balance.currency}.`);
      setOpen(false);
      onDone();
    } else {
      setMessage(answer.message ?? `Declined (${answer.declineCode}).`);
    }
  }

  if (!open) {
    return (
      <>
        <button onClick={() => setOpen(true)} data-testid="top-up">
          Top up balance
        </button>
        {message && <p role="status">{message}</p>}
      </>
    );
  }
  return (
    <form onSubmit={topUp} className="top-up" data-testid="top-up-form">
      <label>
        Amount ({workspace.balance.currency})
        <input aria-label="Top-up amount" inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} />
      </label>
      <select aria-label="Pay with" value={cardId} onChange={(e) => setCardId(e.target.value)}>
        {workspace.cards.map((c) => (
          <option key={c.id} value={c.id}>
            {c.brand} •••• {c.last4}
          </option>
        ))}
        <option value="new">New card</option>
      </select>
      {cardId === "new" && <CardFields card={card} onChange={setCard} />}
      {message && <p className="error">{message}</p>}
      <button className="primary" type="submit">
        Top up
      </button>
    </form>
  );
}
