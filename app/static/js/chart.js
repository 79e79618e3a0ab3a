// The chart: an aggregate response drawn with uPlot (a global from its own script), times in
// UTC; and the same numbers as a table for people who cannot see the canvas.

const COLORS = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207"];
const HEIGHT = 340;
// Past this many buckets dots merge into the line; below it they keep lone points visible.
const DOTS_UP_TO = 300;
const DAY = 86400;

/** Times (Unix seconds) and one series per metric from a GET /api/metrics/aggregate body. */
export function seriesOf(body) {
  // One name: data is a list; several: an object keyed by name, in the order of `metrics`.
  const names = Array.isArray(body.data) ? [body.metric] : body.metrics;
  const lists = Array.isArray(body.data) ? [body.data] : names.map((name) => body.data[name]);
  const series = names.map((name, index) => ({
    name,
    operation: typeof body.operation === "string" ? body.operation : body.operation[name],
    values: lists[index].map((point) => point.value),
  }));
  return { times: lists[0].map((point) => Date.parse(point.timestamp) / 1000), series };
}

/** How many values are drawn: the non-null ones across every series. */
export function countPoints(data) {
  return data.series.reduce(
    (total, series) => total + series.values.filter((value) => value !== null).length,
    0,
  );
}

/** "2026-11-23 14:05", in UTC. */
export function formatUtc(seconds) {
  return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");
}

function axisLabels(plot, ticks, axis, space, step) {
  // Day steps show the date; shorter steps the time, with the date where a day starts.
  return ticks.map((seconds, index) => {
    const [date, time] = formatUtc(seconds).split(" ");
    if (step >= DAY) {
      return date;
    }
    const newDay = index === 0 || date !== formatUtc(ticks[index - 1]).split(" ")[0];
    return newDay ? `${time}\n${date}` : time;
  });
}

function legendTime(plot, seconds) {
  // No time under the cursor: uPlot passes null (or nothing) instead.
  return seconds === null || seconds === undefined ? "–" : formatUtc(seconds);
}

function plotOptions(data, width) {
  const dots = data.times.length <= DOTS_UP_TO;
  return {
    width,
    height: HEIGHT,
    // uPlot places ticks on the boundaries of this zone's days and hours: UTC.
    tzDate: (seconds) => window.uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
    scales: { x: { time: true } },
    axes: [{ values: axisLabels, space: 60 }, {}],
    series: [
      { label: "Time (UTC)", value: legendTime },
      ...data.series.map((series, index) => ({
        label: `${series.name} (${series.operation})`,
        stroke: COLORS[index % COLORS.length],
        width: 2,
        points: { show: dots, size: 6, fill: COLORS[index % COLORS.length] },
      })),
    ],
  };
}

/** The chart in `container`, which carries data-state and data-points for tests and tools. */
export class Chart {
  constructor(container) {
    this.container = container;
    this.plot = null;
    this.data = null;
    this.width = 0;
    new ResizeObserver(() => this.fit()).observe(container);
  }

  /** idle | loading | ready | error. */
  setState(state) {
    this.container.dataset.state = state;
  }

  /** Remove whatever is drawn. */
  clear() {
    this.plot?.destroy();
    this.plot = null;
    this.data = null;
    this.container.dataset.points = "0";
  }

  /** Draw `data` (from seriesOf), replacing the previous chart. */
  draw(data) {
    this.clear();
    this.width = this.container.clientWidth;
    const columns = [data.times, ...data.series.map((series) => series.values)];
    this.plot = new window.uPlot(plotOptions(data, this.width), columns, this.container);
    this.data = data;
    this.container.dataset.points = String(countPoints(data));
  }

  fit() {
    // Only a width change resizes: resizing on height too would feed the observer its own change.
    const width = this.container.clientWidth;
    if (this.plot && width !== this.width) {
      this.width = width;
      this.plot.setSize({ width, height: HEIGHT });
    }
  }
}

/** Fill `table` with the rows of `data` where some series has a value. */
export function fillTable(table, data) {
  const head = document.createElement("tr");
  head.append(cell("th", "Time (UTC)"));
  for (const series of data.series) {
    head.append(cell("th", `${series.name} (${series.operation})`));
  }
  const rows = [head];
  data.times.forEach((seconds, index) => {
    const values = data.series.map((series) => series.values[index]);
    if (values.some((value) => value !== null)) {
      const row = document.createElement("tr");
      row.append(cell("td", formatUtc(seconds)), ...values.map((v) => cell("td", v ?? "–")));
      rows.push(row);
    }
  });
  table.replaceChildren(...rows);
}

function cell(tag, text) {
  const element = document.createElement(tag);
  element.textContent = String(text);
  if (tag === "th") {
    element.scope = "col";
  }
  return element;
}
