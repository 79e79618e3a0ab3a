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

const zoneFormats = new Map();

/** The wall-clock parts of an instant in an IANA zone: {year, month, day, hour, minute, second}. */
function wallClock(seconds, zone) {
  if (!zoneFormats.has(zone)) {
    const parts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit" };
    const options = { ...parts, minute: "2-digit", second: "2-digit", hourCycle: "h23" };
    zoneFormats.set(zone, new Intl.DateTimeFormat("en-US", { ...options, timeZone: zone }));
  }
  const parts = zoneFormats.get(zone).formatToParts(new Date(seconds * 1000));
  return Object.fromEntries(parts.map((part) => [part.type, part.value]));
}

/** How far `zone`'s clocks are ahead of UTC at an instant, in seconds (Asia/Kolkata: 19,800). */
export function zoneOffset(seconds, zone) {
  if (zone === "UTC") {
    return 0;
  }
  const { year, month, day, hour, minute, second } = wallClock(seconds, zone);
  const hours = Number(hour) % 24;
  const wall = Date.UTC(Number(year), Number(month) - 1, Number(day), hours, minute, second);
  return wall / 1000 - Math.floor(seconds);
}

/** "2026-11-23 19:35", in `zone` (an IANA name; "UTC" by default). */
export function formatTime(seconds, zone = "UTC") {
  if (zone === "UTC") {
    return formatUtc(seconds);
  }
  const { year, month, day, hour, minute } = wallClock(seconds, zone);
  return `${year}-${month}-${day} ${String(Number(hour) % 24).padStart(2, "0")}:${minute}`;
}

/** "UTC+05:30": an offset in seconds as people write it. */
export function formatOffset(seconds) {
  const minutes = Math.round(seconds / 60);
  const sign = minutes < 0 ? "-" : "+";
  const hours = String(Math.floor(Math.abs(minutes) / 60)).padStart(2, "0");
  const rest = String(Math.abs(minutes) % 60).padStart(2, "0");
  return `UTC${sign}${hours}:${rest}`;
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
