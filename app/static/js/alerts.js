// The key's alerts on the chart page: the thresholds of a charted metric's value alerts (drawn
// as dotted lines by the chart) and the list of the alerts that fire.
import { formatTime } from "./format.js";

// Red for a firing alert's threshold, amber for one that is ok: apart from the series' colours.
const STATE_COLORS = { firing: "#ef4444", ok: "#f59e0b" };
const DEFAULT_OPERATION = { counter: "sum", value: "avg" };
const DIRECTIONS = { up: "up by more than", down: "down by more than", either: "changed by more than" };

/** The alert's rule in a few words: "> 10 (sum over 5m)", "no data for 15m". */
export function ruleText(alert, operation = alert.operation) {
  const over = `${operation ? `${operation} ` : ""}over ${alert.window}`;
  if (alert.kind === "value") {
    return `${alert.condition} ${alert.threshold} (${over})`;
  }
  if (alert.kind === "delta") {
    const moved = DIRECTIONS[alert.direction] ?? DIRECTIONS.either;
    return `${moved} ${alert.percent}% against ${alert.compare} earlier (${over})`;
  }
  return `no data for ${alert.window}`;
}

function sameFilters(alert, body) {
  const wanted = [...(alert.filters ?? [])].sort();
  const shown = [...(body.filter ?? [])].sort();
  return wanted.length === shown.length && wanted.every((filter, at) => filter === shown[at]);
}

/** The thresholds to draw on a chart (seriesOf's `data` from the aggregate `body`): those of
 * the value alerts of each metric charted ungrouped with the alert's operation (the metric's
 * default when the alert names none) and the alert's filters. Each is {label, value, color,
 * type} (`type`: the metric's, so it goes on that metric's y-axis). */
export function thresholdsOf(alerts, data, body) {
  if (body.group_by) {
    return [];
  }
  const shown = data.series.filter((series) => !series.compared);
  return alerts.flatMap((alert) => {
    const series = shown.find((one) => one.name === alert.metric);
    if (alert.kind !== "value" || !series || !sameFilters(alert, body)) {
      return [];
    }
    const operation = alert.operation ?? DEFAULT_OPERATION[series.type];
    if (operation !== series.operation) {
      return [];
    }
    return [
      {
        label: `alert #${alert.id}: ${alert.condition} ${alert.threshold} ` +
          `(${operation} over ${alert.window}, ${alert.state})`,
        value: alert.threshold,
        color: STATE_COLORS[alert.state] ?? STATE_COLORS.ok,
        type: series.type,
      },
    ];
  });
}

/** Fill the "Firing alerts" box: one entry per firing alert (its metric, a link to its chart,
 * its kind, rule and since when, in `zone`); hidden when none fire. */
export function showFiring(box, list, alerts, zone) {
  const firing = alerts.filter((alert) => alert.state === "firing");
  list.replaceChildren(
    ...firing.map((alert) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/?${new URLSearchParams({ metric: alert.metric })}`;
      link.textContent = alert.metric;
      const since = alert.changed_at ?? alert.evaluated_at;
      const when = since ? `, since ${formatTime(Date.parse(since) / 1000, zone)} ${zone}` : "";
      item.append(link, ` — ${alert.kind}: ${ruleText(alert)}${when} (alert #${alert.id})`);
      return item;
    }),
  );
  box.hidden = firing.length === 0;
}
