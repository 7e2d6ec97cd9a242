// The reference Billing page: the seed's upgrade flow, screen by screen, on the public
// GraphQL API only. State lives here; each screen is a component below it.
import { useCallback, useEffect, useRef, useState } from "react";
import { apiKey, forgetKey, GraphQLRequestError, rememberKey, request, subscribe } from "./api";
import { BILLING_PAGE, PLAN_CHANGES } from "./operations";
import { Checkout, type Order } from "./screens/Checkout";
import { CustomizePlan } from "./screens/CustomizePlan";
import { CustomQuote } from "./screens/CustomQuote";
import { Overview } from "./screens/Overview";
import { SelectPlan } from "./screens/SelectPlan";
import { UsageWidget } from "./screens/UsageWidget";
import type { LoadedPage, PageData } from "./types";

export type Screen =
  | { name: "overview" }
  | { name: "plans" }
  | { name: "customize"; planCode: string }
  | { name: "checkout"; order: Order }
  | { name: "custom-quote" };

export function App() {
  const [key, setKey] = useState<string | null>(() => apiKey());
  const [data, setData] = useState<PageData | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [screen, setScreen] = useState<Screen>({ name: "overview" });
  const [notice, setNotice] = useState<string | null>(null);
  const plans = useRef<PageData["plans"]>([]); // for naming plans in live updates
  plans.current = data?.plans ?? plans.current;

  const reload = useCallback(async () => {
    if (!key) return;
    try {
      const loaded = await request<LoadedPage>(key, BILLING_PAGE);
      if (loaded.workspace.__typename !== "Workspace") {
        forgetKey();
        setKey(null);
        setError(loaded.workspace.message);
        return;
      }
      setData({ ...loaded, workspace: loaded.workspace });
      setError(null);
    } catch (e) {
      setError(e instanceof GraphQLRequestError ? e.message : "The gateway cannot be reached.");
    }
  }, [key]);

  useEffect(() => {
    void reload();
  }, [reload]);

  // Live updates: a plan change made anywhere (this tab, another, renewal) refreshes the page.
  useEffect(() => {
    if (!key) return;
    return subscribe(key, PLAN_CHANGES, (event) => {
      setNotice(describeEvent(event, plans.current));
      void reload();
    });
  }, [key, reload]);

  if (!key) return <KeyForm error={error} onKey={(k) => (rememberKey(k), setKey(k))} />;
  if (!data) return <p className="loading">{error ?? "Loading…"}</p>;
  const workspace = data.workspace;

  return (
    <div className="page">
      <header className="topbar">
        <span className="brand">contact.center™</span>
        <UsageWidget workspace={workspace} onUpgrade={() => setScreen({ name: "overview" })} />
      </header>
      {notice && (
        <div className="notice live" role="status" data-testid="live-notice">
          {notice} <button onClick={() => setNotice(null)}>Dismiss</button>
        </div>
      )}
      {error && <div className="notice error">{error}</div>}
      <main>
        {screen.name === "overview" && (
          <Overview apiKey={key} workspace={workspace} go={setScreen} onChanged={reload} />
        )}
        {screen.name === "plans" && <SelectPlan plans={data.plans} workspace={workspace} go={setScreen} />}
        {screen.name === "customize" && (
          <CustomizePlan
            apiKey={key}
            plan={data.plans.find((p) => p.code === screen.planCode)!}
            data={data}
            go={setScreen}
          />
        )}
        {screen.name === "checkout" && (
          <Checkout
            apiKey={key}
            order={screen.order}
            workspace={workspace}
            go={setScreen}
            onChanged={reload}
          />
        )}
        {screen.name === "custom-quote" && <CustomQuote apiKey={key} go={setScreen} />}
      </main>
    </div>
  );
}

function describeEvent(event: { type: string; payload: any }, plans: { code: string; name: string }[]): string {
  const to = event.payload?.to ?? event.payload;
  const plan = plans.find((p) => p.code === to?.plan)?.name ?? to?.plan ?? "your";
  switch (event.type) {
    case "plan_change.applied":
      return `Your workspace is now on the ${plan} plan.`;
    case "plan_change.scheduled":
      return `A change to the ${plan} plan is scheduled for your next renewal.`;
    case "plan_change.cancelled":
      return "The scheduled plan change was cancelled.";
    default:
      return `Billing updated (${event.type}).`;
  }
}

function KeyForm({ error, onKey }: { error: string | null; onKey: (key: string) => void }) {
  const [value, setValue] = useState("");
  return (
    <form
      className="key-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim()) onKey(value.trim());
      }}
    >
      <h1>Billing</h1>
      <p>Paste your workspace's API key (the demo prints one when it starts).</p>
      {error && <p className="error">{error}</p>}
      <input
        aria-label="API key"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        placeholder="bgw_…"
        autoComplete="off"
      />
      <button type="submit">Open Billing</button>
    </form>
  );
}
