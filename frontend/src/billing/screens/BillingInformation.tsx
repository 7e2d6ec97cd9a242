// The Billing information section of Checkout, with Edit billing details. VAT and taxes are
// calculated from these details, so saving them re-prices the order.
import { useState } from "react";
import { request } from "../api";
import { UPDATE_BILLING_DETAILS } from "../operations";
import type { BillingDetails } from "../types";

const FIELDS: [keyof BillingDetails, string][] = [
  ["name", "Name"],
  ["companyName", "Company"],
  ["addressLine1", "Address"],
  ["addressLine2", "Address line 2"],
  ["city", "City"],
  ["postalCode", "Postal code"],
  ["region", "Region"],
  ["country", "Country (ISO code)"],
  ["vatId", "VAT ID"],
  ["email", "Billing email"],
];

type Props = { apiKey: string; details: BillingDetails | null; onSaved: () => void };

export function BillingInformation({ apiKey, details, onSaved }: Props) {
  const missing = details?.missingFields ?? ["all"];
  const [editing, setEditing] = useState(missing.length > 0);
  const [form, setForm] = useState<Record<string, string>>(() =>
    Object.fromEntries(FIELDS.map(([f]) => [f, (details?.[f] as string | null) ?? ""])),
  );
  const [customerType, setCustomerType] = useState(details?.customerType ?? "PERSON");
  const [error, setError] = useState<string | null>(null);

  async function save(e: React.FormEvent) {
    e.preventDefault();
    const input: Record<string, string | null> = { customerType };
    for (const [field] of FIELDS) input[field] = form[field].trim() || null;
    const { updateBillingDetails: answer } = await request(apiKey, UPDATE_BILLING_DETAILS, { input });
    if (answer.__typename !== "BillingDetails") return setError(answer.message);
    setError(null);
    setEditing(false);
    onSaved();
  }

  if (!editing && details) {
    return (
      <div className="card" data-testid="billing-information">
        <h2>Billing information</h2>
        <p>
          {details.companyName && (
            <>
              {details.companyName}
              <br />
            </>
          )}
          {details.name}
          <br />
          {details.addressLine1}, {details.postalCode} {details.city}, {details.country}
          {details.vatId && (
            <>
              <br />
              VAT ID {details.vatId}
            </>
          )}
        </p>
        <p className="note">VAT and applicable taxes are calculated based on your billing information.</p>
        <button onClick={() => setEditing(true)}>Edit billing details</button>
      </div>
    );
  }
  return (
    <form className="card billing-form" onSubmit={save} data-testid="billing-form">
      <h2>Billing information</h2>
      <label>
        Customer type
        <select value={customerType} onChange={(e) => setCustomerType(e.target.value as "PERSON" | "COMPANY")}>
          <option value="PERSON">Person</option>
          <option value="COMPANY">Company</option>
        </select>
      </label>
      {FIELDS.map(([field, label]) => (
        <label key={field}>
          {label}
          <input aria-label={label} value={form[field]} onChange={(e) => setForm({ ...form, [field]: e.target.value })} />
        </label>
      ))}
      {error && <p className="error">{error}</p>}
      <button type="submit" className="primary">
        Save billing details
      </button>
    </form>
  );
}
