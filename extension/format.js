// Money and months as the member reads them, in the browser's language.

/**
 * "€0.64", "0,64 €": an amount (a decimal string from the gateway) in its currency. The
 * currency's usual digits (two for EUR), more only for an amount that would show as zero.
 */
export function formatMoney(amount, currency, locale = undefined) {
  const value = Number(amount);
  if (amount === null || amount === undefined || amount === "" || !Number.isFinite(value)) {
    return "";
  }
  let usual;
  try {
    usual = new Intl.NumberFormat(locale, { style: "currency", currency });
  } catch {
    return `${amount} ${currency ?? ""}`.trim(); // not a currency code Intl knows
  }
  const digits = usual.resolvedOptions().maximumFractionDigits;
  if (value === 0 || Math.abs(value) >= 10 ** -digits) return usual.format(value);
  return new Intl.NumberFormat(locale, {
    style: "currency", currency, maximumSignificantDigits: 2,
  }).format(value);
}

/** "November 2026" for the gateway's "2026-11" (its months are UTC months). */
export function formatMonth(period, locale = undefined) {
  const match = /^(\d{4})-(\d{2})$/.exec(period ?? "");
  if (!match) return period ?? "";
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1));
  return new Intl.DateTimeFormat(locale, { month: "long", year: "numeric", timeZone: "UTC" })
    .format(date);
}
