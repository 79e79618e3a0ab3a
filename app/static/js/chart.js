// The chart: an aggregate response drawn with uPlot (a global from its own script), times in
// UTC or the chosen zone; and the same numbers as a table for people who cannot see the canvas.
import { MISSING, formatNumber, formatTime, zoneOffset } from "./format.js";

// The first seven as they always were; the other group (top N + other) is grey and dashed.
const COLORS = [
  "#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#db2777",
  "#4d7c0f", "#475569",
];
const OTHER_COLOR = "#8a8f99";
const OTHER_DASH = [6, 4];
// A compared series: its own series' colour, dashed finer.
const COMPARE_DASH = [3, 3];
// An alert's threshold: thin and dotted, in its state's colour.
const THRESHOLD_DASH = [2, 3];
const COMPARE_DAYS = { "1d": 1, "1w": 7, "4w": 28 };
const EARLIER = { "1d": "1 day earlier", "1w": "1 week earlier", "4w": "4 weeks earlier" };
const HEIGHT = 340;
// Past this many buckets with data dots merge into the line; below it they keep lone points
// visible (a line needs two neighbours). Many lines get smaller dots.
const DOTS_UP_TO = 300;
const DOT_SIZE = 6;
const SMALL_DOT_SIZE = 3;
const SMALL_DOTS_FROM = 4;
const DAY = 86400;
// What an empty bucket holds, as the API's fill=zero has it (README "API"): nothing was
// counted, so sums and counts are 0; an average of nothing does not exist.
const EMPTY = { sum: 0, count: 0 };
// With counters and value metrics together, each type gets its own y-axis.
const AXES = { counter: { scale: "counts", side: 3 }, value: { scale: "values", side: 1 } };

/** The chart's data from a GET /api/metrics/aggregate body asked with fill=none over the buckets
 * starting at `grid` (bucketTimes) in `zone`: every bucket, the buckets with data, one series per
 * metric — or, with group_by, one per group that has data (an empty "other" is left out) — and,
 * with compare, one more for each, its earlier buckets moved forward onto the current ones.
 * Points are placed by their own timestamps (local buckets need not lie on the UTC grid). */
export function seriesOf(body, grid, zone = "UTC") {
  const lines = linesOf(body);
  const stamps = lines.flatMap((line) => line.data.map((point) => seconds(point.timestamp)));
  const times = [...new Set([...grid, ...stamps])].sort((a, b) => a - b);
  const index = new Map(times.map((time, at) => [time, at]));
  const withData = new Set();
  const place = (data, values, shift = (time) => time) => {
    for (const point of data) {
      const at = index.get(shift(seconds(point.timestamp)));
      if (at !== undefined) {
        values[at] = point.value;
        withData.add(at);
      }
    }
  };
  const series = [];
  const compared = [];
  lines.forEach((line, at) => {
    const operation = byName(body.operation, line.name);
    const type = byName(body.type, line.name);
    const values = times.map(() => EMPTY[operation] ?? null);
    place(line.data, values);
    const label = line.label ?? `${line.name} (${operation})`;
    series.push({ ...line, label, type, operation, values, points: line.data.length });
    if (line.compare) {
      const { offset, data } = line.compare;
      const earlier = values.map(() => EMPTY[operation] ?? null);
      place(data, earlier, (time) => shiftForward(time, offset, zone));
      const said = `${EARLIER[offset] ?? `${offset} earlier`}`;
      compared.push({
        ...line,
        label: line.label ? `${line.label} (${said})` : `${line.name} (${operation}, ${said})`,
        type,
        operation,
        values: earlier,
        points: data.length,
        compared: true,
        of: at,
      });
    }
  });
  const sorted = [...withData].sort((a, b) => a - b);
  return { times, series: [...series, ...compared], withData: sorted, zone };
}

function seconds(timestamp) {
  return Date.parse(timestamp) / 1000;
}

/** An earlier bucket's time moved forward by a compare offset: whole days in `zone`, so a local
 * midnight stays one across a change of clocks. */
export function shiftForward(time, offset, zone = "UTC") {
  const moved = time + COMPARE_DAYS[offset] * DAY;
  return moved + zoneOffset(time, zone) - zoneOffset(moved, zone);
}

/** What the body holds, one entry per line to draw: {name, data}, and with group_by also
 * {label, tags, other}. */
function linesOf(body) {
  // One name: data (or series) is a list; several: an object keyed by name, in `metrics` order.
  const names = body.metrics ?? [body.metric];
  const byMetric = (field) => (Array.isArray(field) ? [field] : names.map((name) => field[name]));
  if (!body.group_by) {
    const earlier = body.compare ? byMetric(body.compare.data) : [];
    const offset = body.compare?.offset;
    const compare = (index) => body.compare && { offset, data: earlier[index] };
    return byMetric(body.data).map((data, index) => ({
      name: names[index],
      data,
      compare: compare(index),
    }));
  }
  return byMetric(body.series).flatMap((groups, index) =>
    groups
      .filter((group) => group.data.length > 0) // fill=none: no point in the range
      .map((group) => ({
        name: names[index],
        data: group.data,
        tags: group.tags,
        other: Boolean(group.other),
        compare: group.compare,
        label: groupLabel(group, body.group_by, names.length > 1 ? names[index] : null),
      })),
  );
}

/** A group as the CSV route heads its column: `host=web-3` (`k1=v1;k2=v2`) or `other`, inside
 * `name{…}` when several metrics are charted; a series without the key shows `host=(none)`. */
export function groupLabel(group, keys, name = null) {
  const pairs = group.other
    ? "other"
    : keys.map((key) => `${key}=${group.tags[key] === "" ? "(none)" : group.tags[key]}`).join(";");
  return name === null ? pairs : `${name}{${pairs}}`;
}

function byName(field, name) {
  // A field the metrics share is one string; when they differ, an object keyed by name.
  return typeof field === "string" ? field : field[name];
}

/** How many values the API answered: the buckets with data, summed over the series. */
function countPoints(data) {
  return data.series.reduce((total, series) => total + series.points, 0);
}

const axisLabels = (zone) => (plot, ticks, axis, space, step) => {
  // Day steps show the date; shorter steps the time, with the date where a day starts (and on
  // the first tick, unless the next one starts a day: two dates side by side would overlap).
  const dates = ticks.map((seconds) => formatTime(seconds, zone).split(" ")[0]);
  const startsDay = (index) => index > 0 && dates[index] !== dates[index - 1];
  return ticks.map((seconds, index) => {
    const [date, time] = formatTime(seconds, zone).split(" ");
    if (step >= DAY) {
      return date;
    }
    const dated = startsDay(index) || (index === 0 && !startsDay(1));
    return dated ? `${time}\n${date}` : time;
  });
};

const legendTime = (zone) => (plot, seconds) => {
  // No time under the cursor: uPlot passes null (or nothing) instead.
  return seconds === null || seconds === undefined ? MISSING : formatTime(seconds, zone);
};

function legendValue(plot, value) {
  return formatNumber(value);
}

/** Which y-axis each type uses: {} when one axis serves every series. */
function axesByType(data) {
  const types = new Set(data.series.map((series) => series.type));
  return types.size > 1 ? AXES : {};
}

function axisSize(plot, values, axisIndex, cycle) {
  // As wide as the longest tick label (uPlot's fixed width cuts "123,456" to "3,456").
  const axis = plot.axes[axisIndex];
  if (cycle > 1) {
    return axis._size; // uPlot asks again after laying out; settle on the last answer
  }
  const longest = (values ?? []).reduce((a, b) => (b.length > a.length ? b : a), "");
  plot.ctx.font = axis.font[0];
  const text = longest ? plot.ctx.measureText(longest).width / window.devicePixelRatio : 0;
  return Math.ceil(axis.ticks.size + axis.gap + text);
}

function yAxes(byType) {
  if (!byType.counter) {
    return [{ size: axisSize }];
  }
  const { counter, value } = AXES;
  return [
    { ...counter, label: "counters", size: axisSize },
    { ...value, label: "values", size: axisSize, grid: { show: false } },
  ];
}

function markerDash(series) {
  if (!series) {
    return "dotted"; // past the data's series: an alert's threshold
  }
  return series.compared ? "dashed" : "solid";
}

function tzName(zone) {
  return zone === "UTC" ? "Etc/UTC" : zone;
}

function plotOptions(data, width, thresholds) {
  const dots = data.withData.length <= DOTS_UP_TO;
  const dotSize = data.series.length >= SMALL_DOTS_FROM ? SMALL_DOT_SIZE : DOT_SIZE;
  const byType = axesByType(data);
  const zone = data.zone ?? "UTC";
  return {
    width,
    height: HEIGHT,
    // uPlot places ticks on the boundaries of this zone's days and hours.
    tzDate: (seconds) => window.uPlot.tzDate(new Date(seconds * 1000), tzName(zone)),
    scales: { x: { time: true } },
    // A compared series' legend marker is dashed like its line.
    legend: { markers: { dash: (plot, index) => markerDash(data.series[index - 1]) } },
    axes: [{ values: axisLabels(zone), space: 60 }, ...yAxes(byType)],
    series: [
      { label: `Time (${zone})`, value: legendTime(zone) },
      ...data.series.map((series, index) => {
        const color = series.other ? OTHER_COLOR : COLORS[(series.of ?? index) % COLORS.length];
        const dash = series.compared ? COMPARE_DASH : series.other ? OTHER_DASH : null;
        return {
          label: series.label,
          scale: byType[series.type]?.scale ?? "y",
          value: legendValue,
          stroke: color,
          width: series.compared ? 1.5 : 2,
          ...(dash ? { dash } : {}),
          points: { show: dots, size: dotSize, fill: color },
        };
      }),
      // Constant series over the x range: the y-scale takes them in as any other.
      ...thresholds.map((threshold) => ({
        label: threshold.label,
        scale: byType[threshold.type]?.scale ?? "y",
        value: legendValue,
        stroke: threshold.color,
        width: 1,
        dash: THRESHOLD_DASH,
        points: { show: false },
      })),
    ],
  };
}

/** The chart in `container`, which carries data-state, data-points and data-axes for tests
 * and tools. */
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
    this.container.dataset.axes = "";
    this.container.dataset.thresholds = "0";
  }

  /** Draw `data` (from seriesOf), replacing the previous chart, with the alerts' `thresholds`
   * ({label, value, color, type}) as dotted lines (not in `data`: the table leaves them out). */
  draw(data, thresholds = []) {
    this.clear();
    this.width = this.container.clientWidth;
    const columns = [
      data.times,
      ...data.series.map((series) => series.values),
      ...thresholds.map((threshold) => data.times.map(() => threshold.value)),
    ];
    const options = plotOptions(data, this.width, thresholds);
    this.plot = new window.uPlot(options, columns, this.container);
    this.data = data;
    this.container.dataset.points = String(countPoints(data));
    this.container.dataset.thresholds = String(thresholds.length);
    const split = axesByType(data).counter;
    this.container.dataset.axes = split ? "counters left, values right" : "one";
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

/** Fill `table` with the buckets of `data` that hold data: values rounded for reading, the
 * exact ones in each cell's title and data-value (copied by copyExactValues). */
export function fillTable(table, data) {
  const head = document.createElement("tr");
  const zone = data.zone ?? "UTC";
  head.append(cell("th", `Time (${zone})`));
  for (const series of data.series) {
    head.append(cell("th", series.label));
  }
  const rows = data.withData.map((index) => {
    const row = document.createElement("tr");
    row.append(cell("td", formatTime(data.times[index], zone)));
    row.append(...data.series.map((series) => valueCell(series.values[index])));
    return row;
  });
  table.replaceChildren(head, ...rows);
}

/** A copy from the table copies the exact values of the cells it touches, tab-separated. */
export function copyExactValues(event) {
  const selection = document.getSelection();
  const lines = [...event.currentTarget.rows]
    .map((row) => [...row.cells].filter((one) => selection.containsNode(one, true)))
    .filter((cells) => cells.length > 0)
    .map((cells) => cells.map((one) => one.dataset.value ?? one.textContent).join("\t"));
  if (lines.length > 0) {
    event.clipboardData.setData("text/plain", lines.join("\n"));
    event.preventDefault();
  }
}

function valueCell(value) {
  const element = cell("td", formatNumber(value));
  element.dataset.value = value === null ? "" : String(value);
  if (value !== null) {
    element.title = String(value);
  }
  return element;
}

function cell(tag, text) {
  const element = document.createElement(tag);
  element.textContent = String(text);
  if (tag === "th") {
    element.scope = "col";
  }
  return element;
}
