// The operations the page sends are the files under schema/operations/: the same ones the
// gateway's tests run and CI validates against the published schema. Each document is one
// operation with the fragments it spreads (and those they spread), from its own file or the
// shared fragments.graphql, and no others: a document with an unused fragment is invalid.
import billingDetails from "../../../schema/operations/billing_details.graphql?raw";
import billingPage from "../../../schema/operations/billing_page.graphql?raw";
import checkout from "../../../schema/operations/checkout.graphql?raw";
import customQuote from "../../../schema/operations/custom_quote.graphql?raw";
import customizePlan from "../../../schema/operations/customize_plan.graphql?raw";
import shared from "../../../schema/operations/fragments.graphql?raw";
import liveUpdates from "../../../schema/operations/live_updates.graphql?raw";
import scheduledChange from "../../../schema/operations/scheduled_change.graphql?raw";
import topUp from "../../../schema/operations/top_up.graphql?raw";

const DEFINITION = /^(query|mutation|subscription|fragment) (\w+)[^\n]*\{[\s\S]*?^\}/gm;

function definitions(file: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of file.matchAll(DEFINITION)) found.set(match[2], match[0]);
  return found;
}

const sharedFragments = definitions(shared);

/** The operation named ``name`` in ``file``, with the fragments it needs. */
function operation(file: string, name: string): string {
  const own = definitions(file);
  const text = own.get(name);
  if (text === undefined) throw new Error(`no operation ${name}`);
  const needed = new Map<string, string>();
  const visit = (source: string) => {
    for (const [, spread] of source.matchAll(/\.\.\.(\w+)/g)) {
      const fragment = own.get(spread) ?? sharedFragments.get(spread);
      if (fragment !== undefined && !needed.has(spread)) {
        needed.set(spread, fragment);
        visit(fragment);
      }
    }
  };
  visit(text);
  return [text, ...needed.values()].join("\n\n");
}

export const BILLING_PAGE = operation(billingPage, "BillingPage");
export const CUSTOMIZE_PLAN = operation(customizePlan, "CustomizePlan");
export const ORDER_PREVIEW = operation(customizePlan, "OrderPreview");
export const MESSAGE_CALCULATOR = operation(customizePlan, "MessageCalculator");
export const CHECKOUT_NOW = operation(checkout, "CheckoutNow");
export const CONFIRM_PAYMENT = operation(checkout, "ConfirmPayment");
export const UPDATE_BILLING_DETAILS = operation(billingDetails, "UpdateBillingDetails");
export const TOP_UP = operation(topUp, "TopUp");
export const REQUEST_QUOTE = operation(customQuote, "RequestQuote");
export const CANCEL_SCHEDULED_CHANGE = operation(scheduledChange, "CancelScheduledChange");
export const PLAN_CHANGES = operation(liveUpdates, "PlanChanges");
