// How the page writes times, numbers and missing values: one rule each, used everywhere.

/** What stands in for a missing value: in the legend, the table and the status lines. */
export const MISSING = "–";

// Enough digits to read a value at a glance; the table keeps the exact one (title, copy).
const SIGNIFICANT = 4;
const formats = new Map();

/** "2026-11-23 14:05", in UTC. */
export function formatUtc(seconds) {
  return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");
}

/** A value rounded for reading: at least four significant digits, whole digits never dropped
 * (186.10333333333332 → "186.1", 0.000123456 → "0.0001235", 123456.7 → "123,457"). */
export function formatNumber(value) {
  if (value === null || value === undefined) {
    return MISSING;
  }
  if (value !== 0 && Math.abs(value) < 1e-6) {
    return value.toPrecision(SIGNIFICANT);
  }
  const magnitude = value === 0 ? 0 : Math.floor(Math.log10(Math.abs(value)));
  const digits = Math.max(0, SIGNIFICANT - 1 - magnitude);
  if (!formats.has(digits)) {
    formats.set(digits, new Intl.NumberFormat(undefined, { maximumFractionDigits: digits }));
  }
  return formats.get(digits).format(value);
}

/** "1 bucket", "2,017 buckets". */
export function plural(count, noun) {
  return `${formatNumber(count)} ${noun}${count === 1 ? "" : "s"}`;
}
