// The explorer's page as plain DOM: the canvas, the fieldsets of controls and one row per map. The
// behaviour lives in ifs-explorer.js, which passes its handlers in ``actions``.

import { rowLabel, shortest } from "./ifs-text.js";

/** What the form accepts. */
export const LIMITS = {
  maxPoints: 2_000_000,
  minSize: 16,
  maxSize: 1024,
  maxMaps: 64,
  maxSeed: Number.MAX_SAFE_INTEGER,
};
const FLIP_NAMES = { none: "none", tb: "top-bottom", lr: "left-right", both: "both" };
const MODE_NAMES = { point: "point", patch: "patch (seeded 3x3 masks)", color: "colour (hue by point)" };

/** An element with attributes (``on*`` become listeners) and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const thousands = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

const button = (label, action, onclick, attrs = {}) =>
  h("button", { type: "button", "data-action": action, onclick, ...attrs }, label);

/**
 * The page. ``actions``: step(d), copyLink(), importCsv(), addMap(), pFromDet(), revert() and
 * augment() (null: no augmentation box).
 *
 * @returns {object} the root ``wrap`` and the parts the explorer updates: ``canvas``, ``status``,
 *   ``readouts``, ``source``, ``mapsBody``, ``link``, ``csvOut``, ``download``, ``csvIn``, ``file``,
 *   ``tiles``; ``fields`` and ``msgs`` by field name (the messages shown beside each field).
 */
export function buildLayout(facts, actions) {
  const fields = {};
  const msgs = {};
  const msg = (name) =>
    (msgs[name] = h("span", { class: "ofdb-x-msg", "data-msg-for": name, role: "alert" }));
  const field = (name, input, label, hint = "") => {
    fields[name] = input;
    const parts = [h("span", { class: "ofdb-x-label" }, label), input, msg(name)];
    return h("label", { class: "ofdb-x-field", title: hint }, parts);
  };
  const textInput = (name, size = 8) =>
    h("input", { type: "text", inputmode: "decimal", size, "data-field": name, spellcheck: "false" });
  const select = (name, options) =>
    h(
      "select",
      { "data-field": name },
      Object.entries(options).map(([v, t]) => h("option", { value: v }, t)),
    );
  const box = (legend, ...children) => h("fieldset", {}, h("legend", {}, legend), ...children);
  const row = (...children) => h("div", { class: "ofdb-x-row" }, ...children);

  const ui = { fields, msgs };
  ui.canvas = h("canvas", { class: "ofdb-x-canvas", width: facts.view.size, height: facts.view.size });
  ui.status = h("div", { class: "ofdb-x-status", role: "status" });
  ui.readouts = h("table", { class: "ofdb-x-readouts" });
  ui.source = h("div", { class: "ofdb-x-source" });
  ui.mapsBody = h("tbody");
  ui.link = h("input", { type: "text", readonly: "", class: "ofdb-x-link", "data-field": "link" });
  const area = (name, rows, extra = {}) =>
    h("textarea", { rows, wrap: "off", class: "ofdb-x-csv", "data-field": name, ...extra });
  ui.csvOut = area("csv-out", 4, { readonly: "" });
  ui.csvIn = area("csv-in", 3, { placeholder: "paste rows a,b,c,d,e,f,p" });
  ui.download = h("a", { class: "ofdb-x-download", download: "system.csv", href: "#" }, "download CSV");
  ui.file = h("input", { type: "file", accept: ".csv,text/csv", "data-field": "csv-file" });
  ui.tiles = h("div", { class: "ofdb-x-tiles" });

  const rowNames = {};
  for (let r = 0; r < 25; r++) rowNames[r] = `${r}: ${rowLabel(r, facts)}`;
  const flips = Object.fromEntries(facts.flips.map((f) => [f, FLIP_NAMES[f] || f]));
  const stepper = (d) =>
    h(
      "button",
      { type: "button", class: "ofdb-x-step", "data-step": d, onclick: () => actions.step(d) },
      d < 0 ? "\u2039 prev" : "next \u203a",
    );
  const number = "0-based number in the exact FractalDB search";
  const controls = h(
    "div",
    { class: "ofdb-x-controls" },
    box(
      "Category",
      row(stepper(-1), field("category", textInput("category", 6), "number", number), stepper(1)),
      ui.source,
    ),
    box(
      "FractalDB variation",
      field("row", select("row", rowNames), "fluctuation row"),
      field("flip", select("flip", flips), "flip"),
    ),
    box(
      "Drawing",
      field("mode", select("mode", MODE_NAMES), "mode"),
      field("seed", textInput("seed"), "patch seed", "seed of the 3x3 patch masks (patch mode)"),
      field("points", textInput("points"), "points", `2 to ${thousands(LIMITS.maxPoints)}, start included`),
      field("size", textInput("size", 5), "size (px)", `${LIMITS.minSize} to ${LIMITS.maxSize}`),
      field("a", textInput("a"), "a weight", "factor on every map's a; the OFDB generator renders with 0.2"),
    ),
    box(
      "Share",
      row(ui.link, h("button", { type: "button", onclick: actions.copyLink }, "copy link")),
      h(
        "div",
        { class: "ofdb-x-label" },
        "the system as CSV (the package's format, ",
        h("code", {}, "%.18e"),
        ")",
      ),
      ui.csvOut,
      row(ui.download),
      h("div", { class: "ofdb-x-label" }, "import a system (CSV rows a,b,c,d,e,f,p)"),
      ui.csvIn,
      row(button("import", "import", actions.importCsv), ui.file, msg("csv-in")),
    ),
    actions.augment
      ? box(
          "Pre-training augmentations (from the kernel)",
          button("preview", "augment", actions.augment),
          ui.tiles,
        )
      : "",
  );
  const head = ["", ...facts.coefficients, "p", "\u2016A\u2016\u2082", ""].map((t) => h("th", {}, t));
  const maps = h(
    "fieldset",
    { class: "ofdb-x-maps" },
    h("legend", {}, "Maps: (x, y) \u2192 (a x + b y + e, c x + d y + f) with probability p"),
    h("div", { class: "ofdb-x-table" }, h("table", {}, h("thead", {}, h("tr", {}, head)), ui.mapsBody)),
    row(
      button("add map", "add-map", actions.addMap),
      button("p from |det|", "p-det", actions.pFromDet),
      button("revert to category", "revert", actions.revert),
      msg("maps"),
    ),
  );
  const view = h("div", { class: "ofdb-x-view" }, ui.canvas, ui.status, ui.readouts);
  ui.wrap = h("div", { class: "ofdb-x" }, view, controls, maps);
  return ui;
}

/**
 * One map's row: its index, seven inputs (a..f as ``data-coef``, then p), its contraction factor and
 * a remove button. ``actions``: edit(input), keydown(event, input), remove(tr).
 */
export function mapRow(values, coefficients, actions) {
  const cells = values.map((v, q) => {
    const input = h("input", {
      type: "text",
      inputmode: "decimal",
      size: 9,
      "data-coef": q < 6 ? coefficients[q] : "p",
      spellcheck: "false",
    });
    input.value = typeof v === "number" ? shortest(v) : String(v);
    input.addEventListener("input", () => actions.edit(input));
    input.addEventListener("keydown", (ev) => actions.keydown(ev, input));
    return h("td", {}, input);
  });
  const tr = h(
    "tr",
    { class: "ofdb-x-map" },
    h("th", {}, ""),
    cells,
    h("td", { class: "ofdb-x-contraction" }),
  );
  const remove = button("\u00d7", "remove-map", () => actions.remove(tr), { title: "remove this map" });
  tr.append(h("td", {}, remove));
  return tr;
}
