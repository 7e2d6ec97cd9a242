// Step 4: Customize Plan. The sliders set the monthly limits; every move re-prices the Order
// Preview (answers to older moves are dropped). The Message Calculator estimates messages.
import { useEffect, useRef, useState } from "react";
import type { Screen } from "../App";
import { request } from "../api";
import { count, CREDIT_NAMES } from "../format";
import { ORDER_PREVIEW, CUSTOMIZE_PLAN } from "../operations";
import type { CreditOption, PageData, Plan, Quote, UserError } from "../types";
import { MessageCalculator } from "./MessageCalculator";
import { OrderPreview } from "./OrderPreview";

type Props = { apiKey: string; plan: Plan; data: PageData; go: (s: Screen) => void };

export function CustomizePlan({ apiKey, plan, data, go }: Props) {
  const [email, setEmail] = useState<number | null>(null);
  const [messaging, setMessaging] = useState<number | null>(null);
  const [quote, setQuote] = useState<Quote | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const latest = useRef(0);

  // Where the sliders start: the current limits on the same plan, else the plan's defaults.
  useEffect(() => {
    void request(apiKey, CUSTOMIZE_PLAN, { planCode: plan.code }).then(({ selectPlan }) => {
      if (selectPlan.__typename !== "PlanSelection") return setProblem(selectPlan.message);
      setEmail(plan.emailCredits ? selectPlan.emailCredits : null);
      setMessaging(plan.messagingCredits ? selectPlan.messagingCredits : null);
    });
  }, [apiKey, plan]);

  useEffect(() => {
    if (email === null && plan.emailCredits) return;
    const asked = ++latest.current;
    const timer = setTimeout(async () => {
      const input = { planCode: plan.code, emailCredits: email, messagingCredits: messaging };
      const { quote: answer } = await request<{ quote: Quote | UserError }>(apiKey, ORDER_PREVIEW, { input });
      if (asked !== latest.current) return; // a later move was asked meanwhile
      if (answer.__typename === "Quote") {
        setQuote(answer as Quote);
        setProblem(null);
      } else {
        setProblem((answer as UserError).message);
      }
    }, 120);
    return () => clearTimeout(timer);
  }, [apiKey, plan.code, email, messaging]);

  const sliders: [CreditOption | null, number | null, (v: number) => void][] = [
    [plan.emailCredits, email, setEmail],
    [plan.messagingCredits, messaging, setMessaging],
  ];
  return (
    <section className="customize">
      <button className="link" onClick={() => go({ name: "plans" })}>
        ← Select a Plan
      </button>
      <h1>Customize Plan: {plan.name}</h1>
      <div className="columns">
        <div>
          <div className="card">
            <h2>Select volume</h2>
            {!plan.adjustable && <p className="note">The {plan.name} plan does not include adjustable limits.</p>}
            {sliders.map(([option, value, set]) =>
              option && value !== null ? (
                <label key={option.kind} className="slider">
                  <span>
                    {CREDIT_NAMES[option.kind]} <strong data-testid={`value-${option.kind}`}>{count(value)}</strong> / month
                  </span>
                  <input
                    type="range"
                    data-testid={`slider-${option.kind}`}
                    min={option.min}
                    max={option.max}
                    step={option.step}
                    value={value}
                    disabled={!option.adjustable}
                    onChange={(e) => set(Number(e.target.value))}
                  />
                  <span className="muted">
                    {count(option.min)} – {count(option.max)}, {count(option.included)} included
                  </span>
                </label>
              ) : null,
            )}
            <p className="note">
              Email and messaging credits do not roll over: unused credits reset at the start of each billing period.
              If you reduce included limits, the updated limits apply at the start of the next billing period; your
              current limits remain active until renewal.
            </p>
          </div>
          {plan.messagingCredits && messaging !== null && (
            <MessageCalculator apiKey={apiKey} credits={messaging} data={data} />
          )}
          <p className="note">Each email uses 1 credit.</p>
        </div>
        <div>
          {problem && <p className="error">{problem}</p>}
          {quote && (
            <OrderPreview quote={quote}>
              <button
                className="primary"
                data-testid="proceed"
                disabled={quote.kind === "NONE"}
                onClick={() => go({ name: "checkout", order: { planCode: plan.code, quote } })}
              >
                Proceed to checkout
              </button>
            </OrderPreview>
          )}
        </div>
      </div>
    </section>
  );
}
