// The operation select: sum, count, avg, min and max for any metric; the percentiles (p50,
// p90, p95, p99) for value metrics only, as the API answers them (a counter's percentile is a
// 400). While a counter is charted they are disabled, and a chosen one moves back to the
// metrics' own default, saying so.

/** Whether an operation is one of the percentiles. */
export function isPercentile(operation) {
  return /^p\d\d$/.test(operation);
}

/** Offer the percentiles in `select` only while none of `names` is a counter (`types`: name →
 * type; a name not in it is not known yet, and a link's percentile stays until it is). A
 * percentile that may no longer be charted moves to the metrics' default ("", the select's
 * first option): the sentence returned says so, "" when nothing moved. */
export function settleOperation(select, names, types) {
  const counters = names.filter((name) => types.get(name) === "counter");
  for (const option of select.options) {
    option.disabled = counters.length > 0 && isPercentile(option.value);
  }
  if (!select.selectedOptions[0].disabled) {
    return "";
  }
  const chosen = select.value;
  select.value = select.options[0].value;
  const which =
    counters.length === 1 ? `${counters[0]} is a counter` : `${counters.join(", ")} are counters`;
  return `Operation set to the metric's default: ${chosen} is a percentile of value metrics, ` +
    `and ${which}.`;
}
