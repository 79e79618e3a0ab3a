// The chart's tags: a "group by" select and rows of filters, offered from the tag listings of
// the charted metrics (GET /api/metrics/<name>/tags, and /tags/<key> for a key's values), so
// no key is offered that none of them has. A grouped chart asks for the TOP largest groups and
// "other"; a filter the API would refuse whatever the data (a value no tag can hold, a regex
// that does not compile) is marked beside its row and left out of the query.
import { getJson } from "./api.js";
import { setStatus } from "./status.js";

/** How many groups a grouped chart draws besides "other". */
export const TOP = 10;
const OPERATORS = [
  ["=", "="],
  ["!=", "!="],
  ["=~", "=~ regex"],
  ["!~", "!~ regex"],
];
// The API's rules (app/core/tags.py): key=value, key!=value, key=~regex, key!~regex.
const FILTER_RE = /^([^=!]*)(=~|!~|!=|=)([\s\S]*)$/;
const KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const BAD_VALUE_CHAR = /[\u0000-\u001f\u007f-\u009f,\\]/;
const MAX_VALUE = 255;
const MAX_REGEX = 256;
// What RE2 (the API's regex engine) refuses although JavaScript takes it: lookaround and
// backreferences.
const NOT_RE2 = /\(\?<?[=!]|\\[1-9]|\\k</;
const VALUES_LIMIT = 100;
const TYPING_DELAY_MS = 300;

/** A `filter=` text as {key, op, value}, or null when it is not one. */
export function parseFilter(text) {
  const parts = FILTER_RE.exec(text);
  return parts && KEY_RE.test(parts[1]) ? { key: parts[1], op: parts[2], value: parts[3] } : null;
}

/** Why the API would refuse a filter whatever the data, or "" when it may pass. */
export function filterProblem({ op, value }) {
  const length = [...value].length; // the API counts characters, not UTF-16 units
  if (op === "=" || op === "!=") {
    if (length > MAX_VALUE) {
      return `A tag value has at most ${MAX_VALUE} characters.`;
    }
    if (BAD_VALUE_CHAR.test(value) || !value.isWellFormed()) {
      return "A tag value never holds a comma, a backslash or a control character.";
    }
    return "";
  }
  if (length > MAX_REGEX) {
    return `A regex has at most ${MAX_REGEX} characters.`;
  }
  if (NOT_RE2.test(value)) {
    return "Not a regex the server takes: no lookaround or backreferences (RE2).";
  }
  try {
    new RegExp(value);
  } catch (error) {
    return `Not a valid regex: ${error.message.replace(/^Invalid regular expression: /, "")}.`;
  }
  return "";
}

/** The tag controls: `groupBy` (a select), `rows` (a list the filter rows go in), `add` (the
 * "Add filter" button) and `hint` (a status line); `onChange` is called when what the chart
 * asks for changes. The page owns the limits: it says (groupFits) whether a grouped query of
 * the charted metrics fits some range and window. */
export class TagControls {
  constructor({ groupBy, rows, add, hint, onChange, groupFits }) {
    Object.assign(this, { groupBy, rows, add, hint, onChange, groupFits });
    this.listings = new Map(); // metric name → [{key, values}], or {error}
    this.names = [];
    this.keys = []; // [{key, values}] over the charted metrics, by key
    this.loaded = false; // false until the first listing: the URL's choice is kept as is
    this.wanted = { groupBy: "", filters: [] };
    this.lines = [];
    this.controller = null;
    this.applied = "";
    this.serial = 0;
    groupBy.addEventListener("change", () => this.changed());
    add.addEventListener("click", () => this.addRow({ key: this.keys[0].key, op: "=", value: "" }));
  }

  /** Take the grouping and filters a link asks for (shown once the listings say they fit). */
  readParams(params) {
    const filters = params.getAll("filter").map(parseFilter).filter(Boolean);
    this.wanted = { groupBy: params.get("group_by") ?? "", filters };
  }

  /** Add the grouping and the applied filters to a link's parameters. */
  writeParams(params) {
    const { groupBy, filters } = this.loaded ? this.current() : this.wanted;
    if (groupBy) {
      params.set("group_by", groupBy);
    }
    filters.forEach((filter) => params.append("filter", filterText(filter)));
  }

  /** What the aggregate query adds: group_by and top, and the filters (a list); before the
   * listings come, a link's filters that the API would refuse are left out already. */
  queryParams() {
    const { groupBy, filters } = this.loaded ? this.current() : this.wanted;
    const grouping = groupBy ? { group_by: groupBy, top: TOP } : {};
    const fine = filters.filter((filter) => filter.value !== "" && !filterProblem(filter));
    return { ...grouping, filter: fine.map(filterText) };
  }

  /** The key the chart is grouped by, or "". */
  groupKey() {
    return (this.loaded ? this.current() : this.wanted).groupBy;
  }

  /** Forget the listings read so far (a refresh reads them again). */
  forget() {
    this.listings.clear();
  }

  /** Read the listings of `names` (those not read yet) and offer their keys; false when a
   * newer load began. With no names (or no key: `why` says so) nothing is offered, and the
   * choice made so far is kept for when metrics are charted again. */
  async load(names, why = "Choose a metric to group or filter by its tags.") {
    this.controller?.abort();
    const controller = (this.controller = new AbortController());
    this.names = names;
    if (names.length === 0) {
      this.keys = [];
      this.enable(false);
      this.say(why);
      return true;
    }
    // Not read yet, or refused last time (it may answer now).
    const missing = names.filter((name) => !this.known(name));
    const answers = await Promise.all(
      missing.map((name) => getJson(tagsPath(name), {}, controller.signal)),
    );
    if (controller.signal.aborted || answers.some((answer) => answer.aborted)) {
      return false;
    }
    missing.forEach((name, index) => {
      const answer = answers[index];
      this.listings.set(name, answer.ok ? answer.body.tags : { error: answer.message });
    });
    this.offer();
    return true;
  }

  /** Offer the keys of the charted metrics; drop a grouping or filter none of them has. */
  offer() {
    const byKey = new Map();
    const errors = [];
    for (const name of this.names) {
      const listing = this.listings.get(name);
      if (listing.error) {
        errors.push(`The tags of ${name} could not be read: ${listing.error}`);
        continue;
      }
      for (const { key, values } of listing) {
        byKey.set(key, Math.max(values, byKey.get(key) ?? 0));
      }
    }
    this.keys = [...byKey]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, values]) => ({ key, values }));
    const known = new Set(byKey.keys());
    const notes = [];
    const { groupBy, filters } = this.loaded ? this.current() : this.wanted;
    if (!this.loaded) {
      this.loaded = true;
      this.rows.replaceChildren();
      for (const filter of filters.filter((one) => known.has(one.key))) {
        this.addRow(filter, false);
      }
    }
    for (const row of [...this.rows.children]) {
      const key = row.querySelector(".filter-key").value;
      if (!known.has(key)) {
        row.remove();
      }
    }
    for (const filter of filters.filter((one) => !known.has(one.key))) {
      notes.push(`Filter ${filterText(filter)} removed: ${noKey(this.names, filter.key)}.`);
    }
    this.fillGroupBy(groupBy);
    if (groupBy && this.groupBy.value !== groupBy) {
      notes.push(`Not grouped by ${groupBy}: ${noKey(this.names, groupBy)}.`);
    }
    this.rows.querySelectorAll(".filter-key").forEach((select) => fillKeys(select, this.keys));
    this.renumber();
    this.enable(this.keys.length > 0);
    const empty = this.keys.length === 0 && errors.length === 0;
    const none = this.names.length === 1 ? "This metric has no tags" : "No charted metric has tags";
    this.say([...errors, ...notes, empty ? `${none}: nothing to group or filter by.` : ""]);
    this.applied = this.appliedText();
  }

  /** Whether the listing of `name` has been read (a list, empty for a metric without tags). */
  known(name) {
    return Array.isArray(this.listings.get(name));
  }

  /** Disable grouping when no range and window of the page fits a grouped query; a grouping
   * that no longer fits is dropped. Returns the sentence that says so, or "". */
  settle() {
    const fits = this.groupFits(TOP + 1);
    for (const option of [...this.groupBy.options].slice(1)) {
      option.disabled = !fits;
      option.text = option.dataset.label + (fits ? "" : " (too many values)");
    }
    const key = this.groupKey();
    if (fits || !key) {
      return "";
    }
    if (this.loaded) {
      this.groupBy.value = "";
    } else {
      this.wanted.groupBy = "";
    }
    this.applied = this.appliedText();
    this.sayGrouping();
    return `Not grouped by ${key}: ${TOP + 1} groups a metric fit no range and window.`;
  }

  /** What is chosen now: the grouping and the filters that apply (valid, with a value). */
  current() {
    const filters = [...this.rows.children]
      .filter((row) => row.dataset.state === "applied")
      .map((row) => rowFilter(row));
    // Disabled with no metric charted: the choice stays for when one is (no tags: it is "").
    return { groupBy: this.groupBy.value, filters };
  }

  appliedText() {
    const { groupBy, filters } = this.current();
    return JSON.stringify([groupBy, filters.map(filterText)]);
  }

  /** Tell the page when what the chart asks for has changed. */
  changed() {
    const now = this.appliedText();
    const before = this.applied;
    this.applied = now;
    this.sayGrouping();
    if (now !== before) {
      this.onChange();
    }
  }

  fillGroupBy(chosen) {
    const none = document.createElement("option");
    none.value = "";
    none.text = "none";
    const options = this.keys.map(({ key, values }) => {
      const option = document.createElement("option");
      option.value = key;
      // One metric: how many values (more than TOP: the rest add up in "other").
      option.dataset.label = this.names.length === 1 ? `${key} (${plural(values)})` : key;
      option.text = option.dataset.label;
      return option;
    });
    this.groupBy.replaceChildren(none, ...options);
    this.groupBy.value = this.keys.some(({ key }) => key === chosen) ? chosen : "";
  }

  enable(on) {
    this.groupBy.disabled = !on;
    this.add.disabled = !on;
    this.rows.querySelectorAll("select, input, button").forEach((element) => {
      element.disabled = !on;
    });
  }

  say(lines) {
    this.lines = Array.isArray(lines) ? lines.filter(Boolean) : [lines];
    this.sayGrouping();
  }

  sayGrouping() {
    const key = this.loaded && !this.groupBy.disabled ? this.groupBy.value : "";
    const grouping = key
      ? `One line for each of the ${TOP} largest groups by ${key} over the range (the smallest ` +
        "for min); the rest together in “other”."
      : "";
    const errors = this.lines.some((line) => line.includes("could not be read"));
    setStatus(this.hint, [...this.lines, grouping].filter(Boolean).join(" "), errors);
  }

  /** A filter row: key (from the listings), operator, value (offered from the key's values)
   * and a remove button; its data-state says whether it applies (applied | empty | invalid). */
  addRow(filter, focus = true) {
    this.serial += 1;
    const row = document.createElement("li");
    row.className = "filter-row";
    const key = document.createElement("select");
    key.className = "filter-key";
    fillKeys(key, this.keys, filter.key);
    const op = document.createElement("select");
    op.className = "filter-op";
    for (const [value, text] of OPERATORS) {
      op.add(new Option(text, value, false, value === filter.op));
    }
    const values = document.createElement("datalist");
    values.id = `filter-values-${this.serial}`;
    const input = document.createElement("input");
    input.className = "filter-value";
    input.value = filter.value;
    input.setAttribute("list", values.id);
    input.autocomplete = "off";
    input.spellcheck = false;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "filter-remove";
    remove.textContent = "Remove";
    const note = document.createElement("span");
    note.className = "filter-note";
    row.append(key, op, input, values, remove, note);
    this.rows.append(row);
    this.renumber();
    this.check(row);
    this.offerValues(row);
    key.addEventListener("change", () => {
      this.check(row);
      this.offerValues(row);
      this.changed();
    });
    op.addEventListener("change", () => {
      this.check(row);
      this.offerValues(row);
      this.changed();
    });
    input.addEventListener("input", () => {
      this.check(row);
      window.clearTimeout(row.typing);
      row.typing = window.setTimeout(() => {
        this.offerValues(row);
        this.changed();
      }, TYPING_DELAY_MS);
    });
    remove.addEventListener("click", () => {
      window.clearTimeout(row.typing);
      row.controller?.abort();
      row.remove();
      this.renumber();
      this.add.focus();
      this.changed();
    });
    if (focus) {
      input.focus();
    }
    return row;
  }

  /** Mark a row: applied, empty (no value yet: left out) or invalid (and why, beside it). */
  check(row) {
    const filter = rowFilter(row);
    const problem = filter.value === "" ? "" : filterProblem(filter);
    row.dataset.state = filter.value === "" ? "empty" : problem ? "invalid" : "applied";
    const input = row.querySelector(".filter-value");
    input.setAttribute("aria-invalid", String(Boolean(problem)));
    const note = row.querySelector(".filter-note");
    note.textContent = problem || (filter.value === "" ? "Type or pick a value." : "");
    note.classList.toggle("error", Boolean(problem));
  }

  /** Offer the key's values (starting with what is typed, for = and !=) in the row's list. */
  async offerValues(row) {
    row.controller?.abort();
    const controller = (row.controller = new AbortController());
    const { key, op, value } = rowFilter(row);
    const prefix = op === "=" || op === "!=" ? value : "";
    const names = this.names.filter((name) => {
      const listing = this.listings.get(name);
      return Array.isArray(listing) && listing.some((tag) => tag.key === key);
    });
    const params = { prefix, limit: VALUES_LIMIT };
    const answers = await Promise.all(
      names.map((name) => getJson(`${tagsPath(name)}/${key}`, params, controller.signal)),
    );
    if (controller.signal.aborted) {
      return;
    }
    const found = new Set(
      answers.flatMap((answer) => (answer.ok ? answer.body.data.map((item) => item.value) : [])),
    );
    const options = [...found].sort().map((one) => new Option(one, one));
    row.querySelector("datalist").replaceChildren(...options);
  }

  renumber() {
    [...this.rows.children].forEach((row, index) => {
      const n = index + 1;
      row.querySelector(".filter-key").setAttribute("aria-label", `Filter ${n}: tag`);
      row.querySelector(".filter-op").setAttribute("aria-label", `Filter ${n}: operator`);
      row.querySelector(".filter-value").setAttribute("aria-label", `Filter ${n}: value`);
      row.querySelector(".filter-remove").setAttribute("aria-label", `Remove filter ${n}`);
    });
  }
}

function tagsPath(name) {
  return `/api/metrics/${encodeURIComponent(name)}/tags`;
}

function rowFilter(row) {
  return {
    key: row.querySelector(".filter-key").value,
    op: row.querySelector(".filter-op").value,
    value: row.querySelector(".filter-value").value,
  };
}

function filterText({ key, op, value }) {
  return `${key}${op}${value}`;
}

function fillKeys(select, keys, chosen = select.value) {
  select.replaceChildren(...keys.map(({ key }) => new Option(key, key)));
  if (keys.some(({ key }) => key === chosen)) {
    select.value = chosen;
  }
}

function noKey(names, key) {
  return names.length === 1
    ? `${names[0]} has no tag ${key}`
    : `no charted metric has the tag ${key}`;
}

function plural(count) {
  return `${count} value${count === 1 ? "" : "s"}`;
}
