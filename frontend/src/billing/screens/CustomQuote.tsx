// The Custom plan: Request a quote. Sales answers at the address the gateway returns.
import { useState } from "react";
import type { Screen } from "../App";
import { request } from "../api";
import { REQUEST_QUOTE } from "../operations";

export function CustomQuote({ apiKey, go }: { apiKey: string; go: (s: Screen) => void }) {
  const [form, setForm] = useState({ contactName: "", email: "", company: "", message: "" });
  const [volume, setVolume] = useState({ email: "", messaging: "" });
  const [answer, setAnswer] = useState<{ ok: boolean; text: string } | null>(null);

  async function send(e: React.FormEvent) {
    e.preventDefault();
    const input = {
      ...form,
      message: form.message || null,
      expectedEmailCredits: volume.email ? Number(volume.email) : null,
      expectedMessagingCredits: volume.messaging ? Number(volume.messaging) : null,
    };
    const { requestCustomQuote: result } = await request(apiKey, REQUEST_QUOTE, { input });
    setAnswer(
      result.__typename === "CustomQuoteRequested"
        ? { ok: true, text: `Thank you: our sales team will contact you. You can also write to ${result.salesContact}.` }
        : { ok: false, text: result.message },
    );
  }

  return (
    <section>
      <button className="link" onClick={() => go({ name: "plans" })}>
        ← Select a Plan
      </button>
      <h1>Request a quote: Custom</h1>
      <form className="card quote-form" onSubmit={send} data-testid="custom-quote-form">
        {(["contactName", "email", "company"] as const).map((field) => (
          <label key={field}>
            {{ contactName: "Your name", email: "Email", company: "Company" }[field]}
            <input required value={form[field]} onChange={(e) => setForm({ ...form, [field]: e.target.value })} />
          </label>
        ))}
        <label>
          Expected email credits per month
          <input inputMode="numeric" value={volume.email} onChange={(e) => setVolume({ ...volume, email: e.target.value })} />
        </label>
        <label>
          Expected SMS/WhatsApp credits per month
          <input inputMode="numeric" value={volume.messaging} onChange={(e) => setVolume({ ...volume, messaging: e.target.value })} />
        </label>
        <label>
          What do you need?
          <textarea value={form.message} onChange={(e) => setForm({ ...form, message: e.target.value })} />
        </label>
        <button className="primary" type="submit">
          Request a quote
        </button>
        {answer && (
          <p className={answer.ok ? "success" : "error"} role="status" data-testid="quote-request-result">
            {answer.text}
          </p>
        )}
      </form>
    </section>
  );
}
