// A new card's fields. The number and CVC go to the gateway once, with the payment; the
// gateway keeps only a token and what identifies the card to a person.
export type NewCard = { number: string; expMonth: string; expYear: string; cvc: string; save: boolean };

export function CardFields({ card, onChange }: { card: NewCard; onChange: (card: NewCard) => void }) {
  const set = (field: keyof NewCard) => (e: React.ChangeEvent<HTMLInputElement>) =>
    onChange({ ...card, [field]: field === "save" ? e.target.checked : e.target.value });
  return (
    <div className="card-fields" data-testid="card-fields">
      <input aria-label="Card number" inputMode="numeric" autoComplete="cc-number" placeholder="Card number" value={card.number} onChange={set("number")} />
      <input aria-label="Expiry month" inputMode="numeric" placeholder="MM" value={card.expMonth} onChange={set("expMonth")} />
      <input aria-label="Expiry year" inputMode="numeric" placeholder="YYYY" value={card.expYear} onChange={set("expYear")} />
      <input aria-label="CVC" inputMode="numeric" autoComplete="cc-csc" placeholder="CVC" value={card.cvc} onChange={set("cvc")} />
      <label>
        <input type="checkbox" checked={card.save} onChange={set("save")} /> Save this card for renewals
      </label>
    </div>
  );
}
