// Estimate Spendings: how many messages of a type the messaging credits buy in a country.
import { useEffect, useState } from "react";
import { request } from "../api";
import { count } from "../format";
import { MESSAGE_CALCULATOR } from "../operations";
import type { PageData } from "../types";

export function MessageCalculator({ apiKey, credits, data }: { apiKey: string; credits: number; data: PageData }) {
  const [country, setCountry] = useState(data.destinations.find((d) => d.country === "DE")?.country ?? data.destinations[0]?.country ?? "");
  // Only the types the destination offers (WhatsApp is not offered everywhere).
  const offered = new Set(data.destinations.find((d) => d.country === country)?.messageTypes.map((t) => t.code));
  const types = data.messageTypes.filter((t) => t.creditKind === "MESSAGING" && offered.has(t.code));
  const [chosen, setMessageType] = useState("");
  const messageType = types.some((t) => t.code === chosen) ? chosen : (types[0]?.code ?? "");
  const [answer, setAnswer] = useState<string>("");

  useEffect(() => {
    if (!messageType) return;
    let current = true;
    const input = { credits, messageType, country: country || null };
    void request(apiKey, MESSAGE_CALCULATOR, { input }).then(({ estimate }) => {
      if (!current) return;
      setAnswer(
        estimate.__typename === "Estimate"
          ? `≈ ${count(estimate.messages)} messages (${count(estimate.creditsPerMessage)} credits each)`
          : estimate.message,
      );
    });
    return () => {
      current = false;
    };
  }, [apiKey, credits, country, messageType]);

  return (
    <div className="card calculator" data-testid="message-calculator">
      <h2>Message calculator</h2>
      <label>
        Destination country
        <select value={country} onChange={(e) => setCountry(e.target.value)}>
          {data.destinations.map((d) => (
            <option key={d.country} value={d.country}>
              {d.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Message type
        <select value={messageType} onChange={(e) => setMessageType(e.target.value)}>
          {types.map((t) => (
            <option key={t.code} value={t.code}>
              {t.name}
            </option>
          ))}
        </select>
      </label>
      <p className="estimate" data-testid="estimate">
        {answer}
      </p>
    </div>
  );
}
