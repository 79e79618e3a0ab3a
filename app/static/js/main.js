// The chart page: wires the key form, the metric list and the chart controls together.
// The URL carries what is charted (?metric=a&metric=b&window=1m&range=1h), never the key.
import { getJson, storedKey, storeKey } from "./api.js";
import { Chart, countPoints, fillTable, formatUtc, seriesOf } from "./chart.js";
import { MetricList } from "./list.js";
import { setStatus } from "./status.js";

const RANGE_SECONDS = { "1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600 };
const CONTROLS = ["operation", "window", "range"];
const FILTER_DELAY_MS = 250;

const $ = (id) => document.getElementById(id);
const page = { chosen: [], controller: null, filterTimer: 0 };
const chart = new Chart($("chart"));
const list = new MetricList({
  list: $("metric-list"),
  status: $("metrics-status"),
  more: $("more-metrics"),
  isChosen: (name) => page.chosen.includes(name),
  onToggle: toggleMetric,
});

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const names = params.getAll("metric").flatMap((value) => value.split(","));
  page.chosen = [...new Set(names.filter(Boolean))];
  for (const id of CONTROLS) {
    const value = params.get(id);
    if (value && [...$(id).options].some((option) => option.value === value)) {
      $(id).value = value;
    }
  }
}

function writeUrl() {
  const params = new URLSearchParams();
  page.chosen.forEach((name) => params.append("metric", name));
  for (const id of CONTROLS) {
    const select = $(id);
    const initial = [...select.options].find((option) => option.defaultSelected);
    if (select.value !== (initial ?? select.options[0]).value) {
      params.set(id, select.value);
    }
  }
  const query = params.toString();
  window.history.replaceState(null, "", window.location.pathname + (query ? `?${query}` : ""));
}

function timeCaption(now = new Date()) {
  const minutes = -now.getTimezoneOffset();
  const sign = minutes < 0 ? "-" : "+";
  const hours = String(Math.floor(Math.abs(minutes) / 60)).padStart(2, "0");
  const rest = String(Math.abs(minutes) % 60).padStart(2, "0");
  return `times in UTC (your local offset: UTC${sign}${hours}:${rest})`;
}

function aggregateParams() {
  const end = new Date();
  const start = new Date(end.getTime() - RANGE_SECONDS[$("range").value] * 1000);
  const iso = (date) => date.toISOString().replace(/\.\d+Z$/, "Z");
  return {
    name: page.chosen.join(","),
    operation: $("operation").value, // empty: each metric's type decides
    window: $("window").value,
    start: iso(start),
    end: iso(end),
  };
}

function showIdle(message) {
  page.controller?.abort();
  chart.clear();
  chart.setState("idle");
  setStatus($("chart-status"), message);
  $("data-table").replaceChildren();
}

async function drawChart() {
  if (!storedKey()) {
    return showIdle("Enter an API key to see charts.");
  }
  if (page.chosen.length === 0) {
    return showIdle("Choose one or more metrics from the list.");
  }
  page.controller?.abort();
  const controller = (page.controller = new AbortController());
  chart.setState("loading");
  setStatus($("chart-status"), `Loading ${page.chosen.join(", ")}…`);
  const result = await getJson("/api/metrics/aggregate", aggregateParams(), controller.signal);
  if (!result.aborted) {
    showResult(result);
  }
}

function showResult(result) {
  if (!result.ok) {
    chart.clear();
    chart.setState("error");
    setStatus($("chart-status"), result.message, true);
    return;
  }
  try {
    const data = seriesOf(result.body);
    chart.draw(data);
    setStatus($("chart-status"), describe(data, result.body));
    fillTableIfOpen();
    chart.setState("ready");
  } catch (error) {
    chart.clear();
    chart.setState("error");
    setStatus($("chart-status"), `The chart could not be drawn: ${error.message}`, true);
  }
}

function describe(data, body) {
  const points = countPoints(data);
  const [start, end] = [body.start, body.end].map((time) => formatUtc(Date.parse(time) / 1000));
  const count = `${points} point${points === 1 ? "" : "s"} in ${data.times.length} buckets`;
  return `${count} of ${body.window}, ${start} to ${end} UTC.`;
}

function fillTableIfOpen() {
  if ($("data-details").open && chart.data) {
    fillTable($("data-table"), chart.data);
  }
}

function toggleMetric(name, checked) {
  page.chosen = checked ? [...page.chosen, name] : page.chosen.filter((n) => n !== name);
  writeUrl();
  drawChart();
}

function start() {
  if (storedKey()) {
    list.reload($("prefix").value);
  } else {
    list.clear("Enter an API key to list metrics.");
  }
  drawChart();
}

function useKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) {
    storeKey(key);
    setStatus($("key-status"), "Key kept for this tab.");
    start();
  }
}

function forgetKey() {
  storeKey("");
  $("api-key").value = "";
  setStatus($("key-status"), "Key forgotten.");
  start();
}

function filterSoon() {
  window.clearTimeout(page.filterTimer);
  page.filterTimer = window.setTimeout(() => list.reload($("prefix").value), FILTER_DELAY_MS);
}

function wire() {
  $("key-form").addEventListener("submit", useKey);
  $("forget-key").addEventListener("click", forgetKey);
  $("filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    window.clearTimeout(page.filterTimer);
    list.reload($("prefix").value);
  });
  $("prefix").addEventListener("input", filterSoon);
  for (const id of CONTROLS) {
    $(id).addEventListener("change", () => {
      writeUrl();
      drawChart();
    });
  }
  $("refresh").addEventListener("click", drawChart);
  $("data-details").addEventListener("toggle", fillTableIfOpen);
}

readUrl();
wire();
$("time-caption").textContent = timeCaption();
$("api-key").value = storedKey();
if (storedKey()) {
  setStatus($("key-status"), "Using the key kept for this tab.");
}
start();
