// Step 2: Billing → Overview. The actions in Your Plan depend on the subscription: Upgrade Plan
// on Free, Customize Current Plan and Change Plan (in the three-dot menu) on a paid plan.
import { useState } from "react";
import type { Screen } from "../App";
import { request } from "../api";
import { count, CREDIT_NAMES, day, money } from "../format";
import { CANCEL_SCHEDULED_CHANGE } from "../operations";
import type { Workspace } from "../types";
import { TopUp } from "./TopUp";

type Props = { apiKey: string; workspace: Workspace; go: (s: Screen) => void; onChanged: () => void };

export function Overview({ apiKey, workspace, go, onChanged }: Props) {
  const [menu, setMenu] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const change = workspace.scheduledChange;

  async function keepCurrentPlan() {
    const { cancelScheduledChange: answer } = await request(apiKey, CANCEL_SCHEDULED_CHANGE);
    setMessage(answer.__typename === "Workspace" ? "Your current plan continues." : answer.message);
    onChanged();
  }

  return (
    <section className="overview">
      <h1>Billing</h1>
      <nav className="tabs">
        <span className="active">Overview</span>
      </nav>
      <div className="card your-plan" data-testid="your-plan">
        <div className="card-head">
          <h2>Your Plan</h2>
          {workspace.actions.includes("CHANGE_PLAN") && (
            <div className="menu">
              <button aria-label="Plan actions" onClick={() => setMenu(!menu)}>
                ⋯
              </button>
              {menu && (
                <ul role="menu">
                  <li>
                    <button role="menuitem" onClick={() => go({ name: "plans" })}>
                      Change Plan
                    </button>
                  </li>
                </ul>
              )}
            </div>
          )}
        </div>
        <p className="plan-name" data-testid="current-plan">
          {workspace.plan.name}
          {workspace.plan.basePrice && <span> · {money(workspace.plan.basePrice)} / month base</span>}
        </p>
        <p className="muted">
          Current period {day(workspace.period.start)} – {day(workspace.period.end)}
        </p>
        <ul className="limits">
          {workspace.usage.credits.map((c) => (
            <li key={c.kind}>
              {CREDIT_NAMES[c.kind]}: {count(c.used)} used of {count(c.included)}
            </li>
          ))}
        </ul>
        <div className="actions">
          {workspace.actions.includes("UPGRADE_PLAN") && (
            <button className="primary" onClick={() => go({ name: "plans" })}>
              Upgrade Plan
            </button>
          )}
          {workspace.actions.includes("CUSTOMIZE_CURRENT_PLAN") && (
            <button className="primary" onClick={() => go({ name: "customize", planCode: workspace.plan.code })}>
              Customize Current Plan
            </button>
          )}
        </div>
      </div>

      {change && (
        <div className="card downgrade-notice" data-testid="scheduled-change">
          <h2>Scheduled change</h2>
          <p>
            From {day(change.effectiveAt)} your workspace moves to <strong>{change.plan.name}</strong> (
            {count(change.emailCredits)} email credits
            {change.messagingCredits ? `, ${count(change.messagingCredits)} SMS/WhatsApp credits` : ""}), renewing
            at {money(change.dueAtRenewal.total)}. Your current plan and limits remain active until then.
          </p>
          <button onClick={keepCurrentPlan}>Keep my current plan</button>
        </div>
      )}

      <div className="card">
        <h2>Balance</h2>
        <p className="balance" data-testid="balance">
          {money(workspace.balance)}
        </p>
        <p className="muted" data-testid="renewal">
          {workspace.renewalPayment.message}
        </p>
        <TopUp apiKey={apiKey} workspace={workspace} onDone={onChanged} />
      </div>
      {message && <p role="status">{message}</p>}
    </section>
  );
}
