// Step 1: the plan-and-usage widget in the top-right corner; its dialog opens Billing.
import { useState } from "react";
import { count, CREDIT_NAMES } from "../format";
import type { Workspace } from "../types";

export function UsageWidget({ workspace, onUpgrade }: { workspace: Workspace; onUpgrade: () => void }) {
  const [open, setOpen] = useState(false);
  const email = workspace.usage.credits.find((c) => c.kind === "EMAIL");
  return (
    <div className="widget">
      <button className="widget-button" data-testid="usage-widget" onClick={() => setOpen(!open)}>
        <strong data-testid="widget-plan">{workspace.plan.name}</strong>
        {email && (
          <span>
            {count(email.used)} / {count(email.included)} emails
          </span>
        )}
      </button>
      {open && (
        <div className="widget-dialog" role="dialog" aria-label="Plan and usage">
          <h3>{workspace.plan.name} plan</h3>
          {workspace.usage.credits.map((c) => (
            <div key={c.kind} className="usage-row">
              <span>{CREDIT_NAMES[c.kind]}</span>
              <meter min={0} max={Number(c.included) || 1} value={Math.min(Number(c.used), Number(c.included))} />
              <span>
                {count(c.used)} of {count(c.included)} used
              </span>
            </div>
          ))}
          <button
            className="primary"
            onClick={() => {
              setOpen(false);
              onUpgrade();
            }}
          >
            Upgrade now
          </button>
        </div>
      )}
    </div>
  );
}
