// The shapes the page reads, as its operations select them (schema/operations/).
import type { Money } from "./format";

export type CreditOption = {
  kind: "EMAIL" | "MESSAGING";
  included: number;
  min: number;
  max: number;
  step: number;
  default: number;
  adjustable: boolean;
};

export type Plan = {
  code: string;
  name: string;
  description: string;
  tier: number;
  features: string[];
  purchasable: boolean;
  adjustable: boolean;
  requiresQuote: boolean;
  basePrice: Money | null;
  emailCredits: CreditOption | null;
  messagingCredits: CreditOption | null;
};

export type SavedCard = {
  id: string;
  brand: string;
  last4: string;
  expMonth: number;
  expYear: number;
  isRenewalMethod: boolean;
};

export type BillingDetails = {
  customerType: "PERSON" | "COMPANY" | null;
  name: string | null;
  companyName: string | null;
  addressLine1: string | null;
  addressLine2: string | null;
  city: string | null;
  postalCode: string | null;
  region: string | null;
  country: string | null;
  vatId: string | null;
  email: string | null;
  missingFields: string[];
};

export type Workspace = {
  __typename: "Workspace";
  id: string;
  name: string;
  status: string;
  plan: { code: string; name: string; adjustable: boolean; basePrice: Money | null };
  period: { start: string; end: string };
  usage: { credits: { kind: string; used: string; included: string; remaining: string }[] };
  actions: ("UPGRADE_PLAN" | "CUSTOMIZE_CURRENT_PLAN" | "CHANGE_PLAN")[];
  balance: Money;
  paymentMethods: { code: string; label: string; capabilities: string[] }[];
  cards: SavedCard[];
  billingDetails: BillingDetails | null;
  scheduledChange: {
    plan: { code: string; name: string };
    emailCredits: number;
    messagingCredits: number;
    effectiveAt: string;
    dueAtRenewal: { total: Money };
  } | null;
  renewalPayment: { nextRenewalAt: string; nextRenewalAmount: Money; canPayNextRenewal: boolean; message: string };
};

export type PageData = {
  workspace: Workspace;
  plans: Plan[];
  messageTypes: { code: string; name: string; channel: string; creditKind: string; segmented: boolean }[];
  destinations: { country: string; name: string; messageTypes: { code: string }[] }[];
};

/** The page's first answer: ``workspace`` is an error for a key that is not accepted. */
export type LoadedPage = Omit<PageData, "workspace"> & {
  workspace: Workspace | { __typename: "AuthenticationRequired"; code: string; message: string };
};

export type Line = { kind: string; description: string; quantity: number; amount: Money };

export type Charge = {
  lines: Line[];
  subtotal: Money;
  taxLines: { name: string; rate: string; amount: Money; note: string | null }[];
  tax: Money;
  total: Money;
  taxCalculated: boolean;
};

export type Quote = {
  __typename: "Quote";
  kind: "NONE" | "NEW_PERIOD" | "UPGRADE" | "DOWNGRADE" | "SPLIT";
  plan: { code: string; name: string };
  emailCredits: number;
  messagingCredits: number;
  monthlyLines: Line[];
  monthlySubtotal: Money;
  changes: {
    timing: "IMMEDIATE" | "AT_RENEWAL";
    effectiveAt: string;
    plan: { code: string; name: string };
    emailCredits: number;
    messagingCredits: number;
  }[];
  dueNow: Charge;
  dueAtRenewal: Charge;
  renewalAt: string;
  proration: { daysLeft: number; daysInPeriod: number } | null;
  computedAt: string;
  expiresAt: string;
  balance: { now: Money; afterPurchase: Money; sufficient: boolean };
  token: string; // what Checkout Now sends back
};

export type UserError = { __typename: string; code: string; message: string; field?: string[] };
