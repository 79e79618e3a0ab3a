// The chart page: wires the key form, the metric list, the chart controls and the tag controls
// together. The URL carries what is charted (?metric=a&metric=b&operation=p95&window=1m
// &range=1h&tz=UTC&compare=1w&group_by=host&filter=status%3D500), never the key.
import { showFiring, thresholdsOf } from "./alerts.js";
import { getJson, storedKey, storeKey } from "./api.js";
import { Chart, copyExactValues, fillTable, seriesOf } from "./chart.js";
import { Choice, RANGE_SECONDS, WINDOW_SECONDS, bucketTimes } from "./choice.js";
import { formatNumber, formatOffset, formatTime, plural, zoneOffset } from "./format.js";
import { MetricList } from "./list.js";
import { settleOperation } from "./operations.js";
import { setStatus } from "./status.js";
import { TOP, TagControls } from "./tags.js";

const CONTROLS = ["operation", "window", "range", "tz", "compare"];
// Offered besides the browser's zone and UTC.
const ZONES = [
  "America/Los_Angeles",
  "America/New_York",
  "Europe/London",
  "Europe/Berlin",
  "Asia/Kolkata",
  "Asia/Tokyo",
  "Australia/Sydney",
];
const UTC_NAMES = ["UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/UCT", "UCT", "Etc/Zulu", "Zulu"];
// Old names some browsers still give (ICU's), as the zone list calls them now.
const RENAMED = {
  "Asia/Calcutta": "Asia/Kolkata",
  "Asia/Katmandu": "Asia/Kathmandu",
  "Asia/Rangoon": "Asia/Yangon",
  "Asia/Saigon": "Asia/Ho_Chi_Minh",
  "Europe/Kiev": "Europe/Kyiv",
  "Atlantic/Faeroe": "Atlantic/Faroe",
};
const FILTER_DELAY_MS = 250;
const INVALID_KEY = "This key is not valid (401): the server does not know it, or it was " +
  "revoked. Check it, or create a new one.";

const $ = (id) => document.getElementById(id);
const page = { chosen: [], notes: [], controller: null, keyController: null, filterTimer: 0 };
page.loads = 0; // which load of the chosen metrics' types and tags is the newest
// The key's alerts (a promise of the list; [] when they cannot be read) and what fetches them.
page.alerts = Promise.resolve([]);
page.alertsController = null;
const chart = new Chart($("chart"));
const choice = new Choice($("window"), $("range"));
const list = new MetricList({
  list: $("metric-list"),
  status: $("metrics-status"),
  more: $("more-metrics"),
  isChosen: (name) => page.chosen.includes(name),
  canAdd: () => !choice.addRefusal(page.chosen.length),
  onToggle: toggleMetric,
});
const tags = new TagControls({
  groupBy: $("group-by"),
  rows: $("filter-rows"),
  add: $("add-filter"),
  hint: $("tags-hint"),
  groupFits: (groups) => choice.fitsSomehow(Math.max(1, page.chosen.length), groups),
  onChange: () => {
    settleChoice();
    drawChart();
  },
});

/** A zone name the browser knows, or false. */
function knownZone(zone) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function zoneOption(zone, text = zone, isDefault = false) {
  const option = new Option(text, zone, isDefault, isDefault);
  $("tz").append(option);
}

/** The time-zone select: this browser's zone (the default), UTC and a few common zones. */
function offerZones() {
  const resolved = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const own = RENAMED[resolved] ?? resolved;
  const browser = own && !UTC_NAMES.includes(own) && knownZone(own) ? own : "UTC";
  if (browser !== "UTC") {
    zoneOption(browser, `${browser} (this browser)`, true);
  }
  zoneOption("UTC", "UTC", browser === "UTC");
  ZONES.filter((zone) => zone !== browser).forEach((zone) => zoneOption(zone));
}

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const zone = params.get("tz");
  if (zone && knownZone(zone) && ![...$("tz").options].some((o) => o.value === zone)) {
    zoneOption(zone); // a link's zone the list does not hold (the API says if it is unknown)
  }
  const names = params.getAll("metric").flatMap((value) => value.split(","));
  page.chosen = [...new Set(names.filter(Boolean))];
  for (const id of CONTROLS) {
    const value = params.get(id);
    if (value && [...$(id).options].some((option) => option.value === value)) {
      $(id).value = value;
    }
  }
  tags.readParams(params);
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
  tags.writeParams(params);
  const query = params.toString();
  window.history.replaceState(null, "", window.location.pathname + (query ? `?${query}` : ""));
}

function timeCaption(now = new Date()) {
  const zone = $("tz").value;
  if (zone === "UTC") {
    return `times in UTC (your local offset: ${formatOffset(-now.getTimezoneOffset() * 60)})`;
  }
  return `times in ${zone} (now ${formatOffset(zoneOffset(now.getTime() / 1000, zone))})`;
}

/** Keep the metrics, grouping, window and range to what the key's limits allow, saying what
 * moved; `again` keeps what was said since the last change (a second look after the tags). */
function settleChoice({ again = false } = {}) {
  const notes = again ? [...page.notes] : [];
  const most = choice.limits?.max_query_names;
  const asked = page.chosen.length;
  if (most && asked > most) {
    notes.push(`Charting the first ${most} of ${asked} metrics: at most ${most} at once.`);
    page.chosen = page.chosen.slice(0, most);
  }
  notes.push(settleOperation($("operation"), page.chosen, list.types));
  notes.push(tags.settle());
  choice.groups = tags.groupKey() ? TOP + 1 : 1;
  choice.zone = $("tz").value;
  notes.push(choice.settleCompare($("compare"), page.chosen.length));
  notes.push(...choice.settle(page.chosen.length));
  page.notes = [...new Set(notes.filter(Boolean))];
  setStatus($("choice-note"), page.notes.join(" "));
  const full = choice.addRefusal(page.chosen.length);
  $("metrics-full").textContent = full;
  $("metrics-full").hidden = !full;
  list.offerBoxes();
  writeUrl();
}

/** The aggregate query for the chosen metrics over the range up to now (grouped and filtered
 * as the tag controls say, in the chosen zone, compared or not), and its buckets' times. */
function aggregateQuery() {
  const end = Math.floor(Date.now() / 1000);
  const start = end - RANGE_SECONDS[$("range").value];
  const zone = $("tz").value;
  const iso = (seconds) => new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  const params = {
    name: page.chosen.join(","),
    operation: $("operation").value, // empty: each metric's type decides
    window: $("window").value,
    start: iso(start),
    end: iso(end),
    fill: "none", // only the buckets with data: the page tells them from empty ones
    tz: zone === "UTC" ? "" : zone,
    compare: $("compare").value,
    ...tags.queryParams(),
  };
  return { params, grid: bucketTimes(start, end, WINDOW_SECONDS[params.window], zone), zone };
}

function showIdle(message, isError = false) {
  page.controller?.abort();
  chart.clear();
  chart.setState(isError ? "error" : "idle");
  setStatus($("chart-status"), message, isError);
  $("data-table").replaceChildren();
}

async function drawChart() {
  if (!storedKey()) {
    return showIdle("Enter an API key to see charts.");
  }
  if (page.chosen.length === 0) {
    return showIdle("Choose one or more metrics from the list.");
  }
  const refused = choice.refusal(page.chosen.length);
  if (refused) {
    return showIdle(`This key's limits allow no chart of these metrics: ${refused}.`, true);
  }
  page.controller?.abort();
  const controller = (page.controller = new AbortController());
  chart.setState("loading");
  setStatus($("chart-status"), `Loading ${page.chosen.join(", ")}…`);
  const { params, grid, zone } = aggregateQuery();
  const result = await getJson("/api/metrics/aggregate", params, controller.signal);
  const alerts = await page.alerts;
  if (!result.aborted && !controller.signal.aborted) {
    showResult(result, grid, zone, alerts);
  }
}

function showResult(result, grid, zone, alerts) {
  if (!result.ok) {
    chart.clear();
    chart.setState("error");
    setStatus($("chart-status"), result.message, true);
    return;
  }
  try {
    const data = seriesOf(result.body, grid, zone);
    chart.draw(data, thresholdsOf(alerts, data, result.body));
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
  const zone = data.zone;
  const local = (time) => formatTime(Date.parse(time) / 1000, zone);
  const [start, end] = [body.start, body.end].map(local);
  const buckets = `${plural(data.times.length, "bucket")}, ${formatNumber(data.withData.length)}`;
  const said = [`${buckets} with data (${body.window} each), ${start} to ${end} ${zone}.`];
  const current = data.series.filter((series) => !series.compared);
  if (body.group_by) {
    const operation = typeof body.operation === "string" ? ` (${body.operation})` : "";
    const groups = plural(current.filter((series) => !series.other).length, "group");
    const other = current.some((series) => series.other) ? " and “other”" : "";
    said.push(`Grouped by ${body.group_by.join(", ")}${operation}: ${groups}${other} with data.`);
  }
  if (body.filter) {
    said.push(`Filtered: ${body.filter.join(", ")}.`);
  }
  if (data.series.some((series) => series.compared)) {
    const earlier = $("compare").selectedOptions[0].dataset.label;
    said.push(`Dashed: the same query ${earlier}, moved forward onto these times.`);
  }
  return said.join(" ");
}

function fillTableIfOpen() {
  if ($("data-details").open && chart.data) {
    fillTable($("data-table"), chart.data);
  }
}

async function toggleMetric(name, checked) {
  page.chosen = checked ? [...page.chosen, name] : page.chosen.filter((n) => n !== name);
  settleChoice();
  if (await loadTags()) {
    drawChart();
  }
}

/** Learn the chosen metrics' types (for the operation select) and offer their tags; false
 * when a newer load began (it draws). */
async function loadTags() {
  const load = ++page.loads;
  if (storedKey()) {
    await list.learnTypes(page.chosen);
  }
  if (load !== page.loads) {
    return false;
  }
  const loaded = storedKey()
    ? await tags.load(page.chosen)
    : await tags.load([], "Enter an API key to group or filter by tags.");
  if (loaded) {
    settleChoice({ again: true });
  }
  return loaded;
}

/** Fetch the key's alerts (once per key, and on Refresh) and list those that fire. A key that
 * may not read them (403), or a server without them (404), gets no list and no thresholds. */
function loadAlerts() {
  page.alertsController?.abort();
  const controller = (page.alertsController = new AbortController());
  const loading = storedKey()
    ? getJson("/api/alerts", {}, controller.signal)
    : Promise.resolve({ ok: false });
  page.alerts = loading.then((result) =>
    result.ok && Array.isArray(result.body.data) ? result.body.data : [],
  );
  page.alerts.then((alerts) => {
    if (!controller.signal.aborted) {
      page.alertList = alerts;
      listFiring();
    }
  });
}

function listFiring() {
  showFiring($("firing-alerts"), $("firing-list"), page.alertList ?? [], $("tz").value);
}

async function refresh() {
  loadAlerts();
  tags.forget(); // new tag values may have come
  list.forgetTypes(); // a metric may have been deleted and made again as the other type
  if (await loadTags()) {
    drawChart();
  }
}

function showKeyStatus(text, { isError = false, invalid = false } = {}) {
  setStatus($("key-status"), text, isError);
  $("api-key").setAttribute("aria-invalid", String(invalid));
}

/** Ask for the key's limits, a cheap call that also tells whether the key is valid: a key the
 * server refuses is forgotten and said so beside the field. False when a newer check began. */
async function checkKey(keptMessage) {
  page.keyController?.abort();
  const controller = (page.keyController = new AbortController());
  showKeyStatus("Checking the key…");
  const result = await getJson("/api/limits", {}, controller.signal);
  if (result.aborted) {
    return false;
  }
  choice.limits = result.ok ? result.body : null;
  if (result.status === 401) {
    storeKey("");
    showKeyStatus(INVALID_KEY, { isError: true, invalid: true });
  } else if (result.ok) {
    showKeyStatus(keptMessage);
  } else {
    showKeyStatus(`${keptMessage} Its limits could not be read: ${result.message}`, {
      isError: true,
    });
  }
  return true;
}

async function start(keptMessage) {
  if (storedKey() && !(await checkKey(keptMessage))) {
    return;
  }
  list.forgetTypes(); // another tenant may have metrics of the same names
  settleChoice();
  loadAlerts();
  if (storedKey()) {
    list.reload($("prefix").value);
  } else {
    list.clear("Enter an API key to list metrics.");
  }
  tags.forget(); // another key may see another tenant's metrics
  if (await loadTags()) {
    drawChart();
  }
}

function useKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) {
    storeKey(key);
    start("Key kept for this tab.");
  }
}

function forgetKey() {
  page.keyController?.abort();
  storeKey("");
  choice.limits = null;
  $("api-key").value = "";
  showKeyStatus("Key forgotten.");
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
      settleChoice();
      drawChart();
    });
  }
  $("tz").addEventListener("change", () => {
    $("time-caption").textContent = timeCaption();
    listFiring();
  });
  $("refresh").addEventListener("click", refresh);
  $("data-details").addEventListener("toggle", fillTableIfOpen);
  $("data-table").addEventListener("copy", copyExactValues);
}

offerZones();
readUrl();
wire();
$("time-caption").textContent = timeCaption();
$("api-key").value = storedKey();
start("Using the key kept for this tab.");
