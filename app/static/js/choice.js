// Which windows and ranges the page offers. A query past the key's limits (GET /api/limits) is
// refused with 400 QUERY_TOO_LARGE, so a choice that would be refused is never offered: it is
// disabled, and a refused window or range (from the URL, or after a change) moves to the
// nearest one that fits, saying so. A grouped query (group_by with top=N) counts N + 1 groups
// for each metric, as the API does before it reads a point; a compared query (compare=1d|1w|4w)
// counts its buckets twice, the earlier range's too.
import { formatNumber, plural, zoneOffset } from "./format.js";

export const WINDOW_SECONDS = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400 };
export const RANGE_SECONDS = { "1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 86400 };
const TOO_LARGE = " (too many buckets)";

/** The first and last bucket holding start ≤ t < end (whole Unix seconds), as the API counts. */
export function bucketSpan(start, end, windowSeconds) {
  return {
    first: Math.floor(start / windowSeconds),
    last: Math.floor((end - 1) / windowSeconds),
    seconds: windowSeconds,
  };
}

/** The start of every bucket from `start` to `end` (Unix seconds) in `zone`: the UTC grid for
 * windows under an hour (the same instants in every zone), local whole hours for 1h (Asia/Kolkata's
 * start at :30 UTC) and local midnights for 1d (a DST day is 23 or 25 hours long). */
export function bucketTimes(start, end, windowSeconds, zone = "UTC") {
  const phase = windowSeconds === 3600 ? mod(zoneOffset(start, zone), 3600) : 0;
  if (zone === "UTC" || windowSeconds < 86400) {
    const { first, last } = bucketSpan(start - phase, end - phase, windowSeconds);
    return Array.from({ length: last - first + 1 }, (_, k) => (first + k) * windowSeconds + phase);
  }
  const times = [];
  // A day lasts 23 to 25 hours: 26 hours after a midnight is always the next day.
  let day = localMidnight(start, zone);
  while (day < end) {
    times.push(day);
    day = localMidnight(day + 26 * 3600, zone);
  }
  return times;
}

/** The local midnight starting the day (in `zone`) that holds an instant. */
function localMidnight(seconds, zone) {
  const day = Math.floor((seconds + zoneOffset(seconds, zone)) / 86400) * 86400;
  const guess = day - zoneOffset(seconds, zone);
  return day - zoneOffset(guess, zone);
}

function mod(value, divisor) {
  return ((value % divisor) + divisor) % divisor;
}

/** The most buckets a range can touch, wherever it starts: one more when it straddles. */
export function mostBuckets(rangeSeconds, windowSeconds) {
  return Math.floor((rangeSeconds - 1) / windowSeconds) + 2;
}

/** Why the API would refuse `names` metrics of `groups` groups each over a range in a window,
 * or "" if it fits (always "" while the limits are unknown: the API's answer then says what
 * was wrong). `compared` counts every bucket twice; `local` days may be 23 hours long, so a
 * range may touch one day more. */
export function refusal(
  limits,
  names,
  rangeSeconds,
  windowSeconds,
  groups = 1,
  { compared = false, local = false } = {},
) {
  if (!limits) {
    return "";
  }
  const extra = local && windowSeconds === 86400 ? 1 : 0;
  const buckets = (mostBuckets(rangeSeconds, windowSeconds) + extra) * (compared ? 2 : 1);
  if (names > limits.max_query_names) {
    return `${plural(names, "metric")}; at most ${limits.max_query_names} at once`;
  }
  if (buckets > limits.max_buckets) {
    return `up to ${formatNumber(buckets)} buckets; at most ${formatNumber(limits.max_buckets)}`;
  }
  if (names * groups * buckets > limits.max_query_points) {
    const counts = [buckets, names * groups * buckets, limits.max_query_points];
    const [each, values, most] = counts.map(formatNumber);
    const lines = groups > 1 ? `${plural(names, "metric")} × ${groups} groups` : `${names} metrics`;
    return `${lines} × up to ${each} buckets: ${values} values; at most ${most}`;
  }
  return "";
}

/** The window and range selects, kept to what the key's limits allow. */
export class Choice {
  constructor(windowSelect, rangeSelect) {
    this.window = windowSelect;
    this.range = rangeSelect;
    this.limits = null;
    this.groups = 1; // each metric's groups: TOP + 1 when grouped
    this.compared = false; // compare=…: every bucket counts twice
    this.zone = "UTC";
    for (const option of [...windowSelect.options, ...rangeSelect.options]) {
      option.dataset.label = option.text;
    }
  }

  /** Why `names` metrics over a range (default: the chosen one) in a window would be refused. */
  refusal(
    names,
    range = this.range.value,
    window = this.window.value,
    groups = this.groups,
    compared = this.compared,
  ) {
    const how = { compared, local: this.zone !== "UTC" };
    return refusal(this.limits, names, RANGE_SECONDS[range], WINDOW_SECONDS[window], groups, how);
  }

  /** Whether `names` metrics (of `groups` groups each) fit a range in some window. */
  fitsSomeWindow(names, range, groups = this.groups, compared = this.compared) {
    return [...this.window.options].some(
      (option) => !this.refusal(names, range, option.value, groups, compared),
    );
  }

  /** Whether `names` metrics of `groups` groups each (compared or not) fit some range in some
   * window. */
  fitsSomehow(names, groups, compared = this.compared) {
    return [...this.range.options].some((option) =>
      this.fitsSomeWindow(names, option.value, groups, compared),
    );
  }

  /** Offer in `select` (compare: "" and offsets) only the comparisons that fit some range and
   * window for `names` metrics; a refused one moves to none, said in the sentence returned. */
  settleCompare(select, names) {
    for (const option of select.options) {
      option.dataset.label ??= option.text;
    }
    const count = Math.max(1, names);
    offer(select, (option) => !option.value || this.fitsSomehow(count, this.groups, true));
    let moved = "";
    if (select.selectedOptions[0].disabled) {
      const why = "comparing counts every bucket twice, and no range and window fit that";
      moved = moveTo(select, select.options[0], "Compare", why);
    }
    this.compared = select.value !== "";
    return moved;
  }

  /** Why one more metric than `names` cannot be ticked, or "" when it can. */
  addRefusal(names) {
    if (this.fitsSomeWindow(names + 1, this.range.value)) {
      return "";
    }
    if (names + 1 > this.limits.max_query_names) {
      return `At most ${this.limits.max_query_names} metrics at once.`;
    }
    return `No more metrics fit the ${label(this.range)}; a shorter range allows more.`;
  }

  /** Disable what `names` metrics cannot use and move a refused range (to the longest that
   * fits) or window (to the finest that fits); one sentence per move. */
  settle(names) {
    const count = Math.max(1, names);
    const moves = [];
    offer(this.range, (option) => this.fitsSomeWindow(count, option.value));
    if (this.range.selectedOptions[0].disabled) {
      const longest = [...this.range.options].findLast((option) => !option.disabled);
      moves.push(moveTo(this.range, longest, "Range", `no window fits the ${label(this.range)}`));
    }
    offer(this.window, (option) => !this.refusal(count, this.range.value, option.value));
    if (this.window.selectedOptions[0].disabled) {
      const finest = [...this.window.options].find((option) => !option.disabled);
      const why = `${label(this.window)} over the ${label(this.range)} would be refused`;
      moves.push(moveTo(this.window, finest, "Window", `${why} (${this.refusal(count)})`));
    }
    return moves.filter(Boolean);
  }
}

function offer(select, fits) {
  for (const option of select.options) {
    option.disabled = !fits(option);
    option.text = option.dataset.label + (option.disabled ? TOO_LARGE : "");
  }
}

function moveTo(select, option, what, why) {
  // No option fits at all (absurdly small limits): stay, and the page refuses to ask.
  if (!option) {
    return "";
  }
  select.value = option.value;
  return `${what} set to ${label(select)}: ${why}.`;
}

function label(select) {
  return select.selectedOptions[0].dataset.label;
}
