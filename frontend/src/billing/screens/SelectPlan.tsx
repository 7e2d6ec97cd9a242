// Step 3: Select a Plan. Each card lists the plan's features from the catalog; Custom asks for
// a quote instead.
import type { Screen } from "../App";
import { count, money } from "../format";
import type { Plan, Workspace } from "../types";

type Props = { plans: Plan[]; workspace: Workspace; go: (s: Screen) => void };

export function SelectPlan({ plans, workspace, go }: Props) {
  const current = plans.find((p) => p.code === workspace.plan.code);
  return (
    <section>
      <h1>Select a Plan</h1>
      <p className="note">
        If you switch to a lower-tier plan, the new plan takes effect at the start of the next billing period. Your
        current plan remains active until renewal.
      </p>
      <div className="plans">
        {plans.map((plan) => {
          const isCurrent = plan.code === workspace.plan.code;
          const lower = current !== undefined && plan.tier < current.tier;
          return (
            <article key={plan.code} className={`plan-card${isCurrent ? " current" : ""}`} data-testid={`plan-${plan.code}`}>
              <h2>{plan.name}</h2>
              <p className="price">
                {plan.basePrice ? (
                  <>
                    {money(plan.basePrice)} <span>/ month</span>
                  </>
                ) : (
                  "Custom pricing"
                )}
              </p>
              <p>{plan.description}</p>
              <ul>
                {plan.features.map((f) => (
                  <li key={f}>{f}</li>
                ))}
              </ul>
              {plan.emailCredits && <p className="muted">From {count(plan.emailCredits.min)} email credits</p>}
              {plan.code === "omnichannel" && (
                <p className="note">Messaging features and included credits depend on the selected configuration.</p>
              )}
              {plan.requiresQuote ? (
                <button onClick={() => go({ name: "custom-quote" })}>Request a quote</button>
              ) : isCurrent && !plan.adjustable ? (
                <button disabled>Current plan</button>
              ) : (
                <button
                  className={isCurrent ? "" : "primary"}
                  onClick={() => go({ name: "customize", planCode: plan.code })}
                >
                  {isCurrent ? "Customize" : lower ? `Switch to ${plan.name}` : `Select ${plan.name}`}
                </button>
              )}
            </article>
          );
        })}
      </div>
    </section>
  );
}
