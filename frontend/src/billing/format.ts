// Amounts arrive as exact decimal strings ("1234.50"); they are shown as such, never through
// floating point.
export type Money = { amount: string; currency: string };

function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function money(value: Money | null | undefined): string {
  if (!value) return "—";
  const negative = value.amount.startsWith("-");
  const [whole, fraction] = value.amount.replace("-", "").split(".");
  const text = groupThousands(whole) + (fraction ? `.${fraction}` : "");
  return `${negative ? "−" : ""}${text} ${value.currency}`;
}

export function count(value: number | string | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const [whole, fraction] = String(value).split(".");
  const trimmed = fraction ? fraction.replace(/0+$/, "") : "";
  return groupThousands(whole) + (trimmed ? `.${trimmed}` : "");
}

export function day(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Date(iso).toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
}

export const CREDIT_NAMES: Record<string, string> = { EMAIL: "Email credits", MESSAGING: "SMS/WhatsApp credits" };
