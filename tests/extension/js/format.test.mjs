// Money and months in the member's language: never "0.642857 EUR" or "2026-11".
import assert from "node:assert/strict";
import { test } from "node:test";

import { formatMoney, formatMonth } from "../../../extension/format.js";

test("amounts in their currency, with the currency's usual digits", () => {
  assert.equal(formatMoney("0.642857", "EUR", "en-US"), "€0.64");
  assert.equal(formatMoney("10.00", "EUR", "en-US"), "€10.00");
  assert.equal(formatMoney("1234.5", "EUR", "de-DE"), "1.234,50\u00a0€");
  assert.equal(formatMoney("0.642857", "EUR", "fr-FR"), "0,64\u00a0€");
  assert.equal(formatMoney("3", "USD", "en-US"), "$3.00");
  assert.equal(formatMoney("1500", "JPY", "ja-JP"), "￥1,500");
  assert.equal(formatMoney("0", "EUR", "en-US"), "€0.00");
});

test("a tiny share shows its first digits instead of zero", () => {
  assert.equal(formatMoney("0.004285", "EUR", "en-US"), "€0.0043");
});

test("nothing to show, or a currency Intl does not know", () => {
  assert.equal(formatMoney(null, "EUR", "en-US"), "");
  assert.equal(formatMoney("2.5", "not-a-currency", "en-US"), "2.5 not-a-currency");
});

test("months have their names", () => {
  assert.equal(formatMonth("2026-11", "en-US"), "November 2026");
  assert.equal(formatMonth("2026-01", "de-DE"), "Januar 2026");
  assert.equal(formatMonth("garbage", "en-US"), "garbage");
});
