// The metric list: pages of GET /api/metrics by name prefix, each name a checkbox; and the
// types of the metrics it has listed or looked up, which the operation select goes by.
import { getJson } from "./api.js";
import { setStatus } from "./status.js";

const PAGE_SIZE = 100;

/** The list in `list`, its status line and "Show more" button; the page owns the choice and
 * says (canAdd) whether one more metric may be ticked. */
export class MetricList {
  constructor({ list, status, more, isChosen, canAdd, onToggle }) {
    Object.assign(this, { list, status, more, isChosen, canAdd, onToggle });
    this.prefix = "";
    this.after = "";
    this.controller = null;
    this.types = new Map(); // name → "counter" | "value", of the names seen so far
    more.addEventListener("click", () => this.loadPage(false));
  }

  /** Start again from the first page of names starting with `prefix`. */
  reload(prefix) {
    this.prefix = prefix;
    this.after = "";
    return this.loadPage(true);
  }

  /** Empty the list and say why. */
  clear(message) {
    this.controller?.abort();
    this.list.replaceChildren();
    this.more.hidden = true;
    setStatus(this.status, message);
  }

  /** Tick the chosen names; unticked boxes are enabled only while one more metric fits. */
  offerBoxes() {
    const open = this.canAdd();
    for (const box of this.list.querySelectorAll("input[type=checkbox]")) {
      box.checked = this.isChosen(box.value);
      box.disabled = !box.checked && !open;
    }
  }

  /** Look up the types of the `names` not seen yet (a page of GET /api/metrics starting at the
   * name: the name itself comes first when it exists); a name that cannot be read stays
   * unknown. */
  async learnTypes(names) {
    const unknown = names.filter((name) => !this.types.has(name));
    const pages = await Promise.all(
      unknown.map((name) => getJson("/api/metrics", { prefix: name, limit: 1 })),
    );
    pages.forEach((result, at) => {
      const [first] = result.ok ? result.body.data : [];
      if (first?.name === unknown[at]) {
        this.types.set(first.name, first.type);
      }
    });
  }

  /** Forget every type seen: another key may see another tenant's metrics. */
  forgetTypes() {
    this.types.clear();
  }

  async loadPage(fresh) {
    this.controller?.abort();
    const controller = (this.controller = new AbortController());
    setStatus(this.status, "Loading metrics…");
    // Keyset paging: the next page starts after the last name shown, however the list grows.
    const params = { prefix: this.prefix, limit: PAGE_SIZE, after: this.after };
    const result = await getJson("/api/metrics", params, controller.signal);
    if (result.aborted) {
      return;
    }
    if (!result.ok) {
      this.clear("");
      setStatus(this.status, result.message, true);
      return;
    }
    const items = result.body.data.map((metric) => this.item(metric));
    if (fresh) {
      this.list.replaceChildren(...items);
    } else {
      this.list.append(...items);
    }
    this.after = result.body.next_after ?? "";
    this.more.hidden = !result.body.has_more;
    this.offerBoxes();
    setStatus(this.status, this.summary());
  }

  item(metric) {
    this.types.set(metric.name, metric.type);
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = metric.name;
    box.checked = this.isChosen(metric.name);
    box.addEventListener("change", () => this.onToggle(metric.name, box.checked));
    const name = document.createElement("span");
    name.textContent = metric.name;
    const type = document.createElement("span");
    type.className = "metric-type";
    type.textContent = metric.type;
    const label = document.createElement("label");
    label.append(box, name, type);
    const item = document.createElement("li");
    item.append(label);
    return item;
  }

  summary() {
    const shown = this.list.children.length;
    if (shown > 0) {
      return `${shown} metric${shown === 1 ? "" : "s"}${this.more.hidden ? "" : " so far"}`;
    }
    return this.prefix ? `No metric name starts with “${this.prefix}”.` : "No metrics yet.";
  }
}
