// The fractal explorer's behaviour: one IFS category on a canvas, every control, no framework.
//
// ``mount(root, host)`` builds the page (ifs-layout.js) in ``root`` and draws with ifs-core.js. The
// host supplies the categories and the package's facts: the book page (ifs-book.js) from the embedded
// search data, the JupyterLab widget (ifs-widget.js) from the kernel. Every change re-reads the whole
// form; input that cannot be drawn (a non-number, an empty system, a diverging system) gets a message
// beside its field and the canvas keeps the last good picture, which is also what the URL and the
// CSV describe.

import * as core from "./ifs-core.js";
import { buildLayout, h, LIMITS, mapRow, thousands } from "./ifs-layout.js";
import * as text from "./ifs-text.js";

/** The drawn state reaches the URL and the host this long after a burst of updates. */
const PUBLISH_DELAY_MS = 100;
const pct = (lit, total) => `${(lit / total).toFixed(4)} (${thousands(lit)} of ${thousands(total)} px)`;
const name5 = (k) => String(k).padStart(5, "0");

/**
 * Build the explorer in ``root``.
 *
 * @param {HTMLElement} root
 * @param {object} host ``facts`` (from ``ofdb_study.explorer.web.facts``); ``category(k)``: the
 *   category's ``{rows, lit}`` (rows a..f,p; ``lit``: the search's filter record in pixels, or null)
 *   or ``{error}``, directly or as a promise; ``maxCategory``: the highest number offered (null: no
 *   limit); ``useUrl``: keep the state in ``location.hash``; ``initial``: the state hash to open with
 *   otherwise; ``onGood(state, hash)``: called after a burst of drawn updates; ``augment(state)``:
 *   optional promise of ``{tiles: [{title, png}], notes}``.
 * @returns {object} ``{ready, setHash, state, hash, lastUpdateMs, destroy}``.
 */
export function mount(root, host) {
  const facts = host.facts;
  const view = facts.view;
  let loaded = null; // {k, rows, lit}: the category as searched
  let good = null; // the last drawn state
  let lastMs = null;
  let token = 0;
  let publishTimer = null;
  const filterCache = new Map();
  const ui = buildLayout(facts, {
    step,
    copyLink,
    importCsv: () => importCsv(ui.csvIn.value),
    addMap,
    pFromDet,
    revert,
    augment: host.augment ? augment : null,
  });
  const {
    fields,
    msgs,
    canvas,
    status,
    readouts,
    source,
    mapsBody,
    link,
    csvOut,
    download,
    csvIn,
    file,
    tiles,
  } = ui;
  const wrap = ui.wrap;
  const ctx = canvas.getContext("2d");
  root.replaceChildren(wrap);
  download.addEventListener("click", () => {
    // the file is made when asked for: a blob URL per update would cost more than the update
    if (download.href.startsWith("blob:")) URL.revokeObjectURL(download.href);
    download.href = URL.createObjectURL(new Blob([csvOut.value], { type: "text/csv" }));
  });

  for (const name of ["row", "flip", "mode"]) fields[name].addEventListener("change", () => update(name));
  for (const name of ["seed", "points", "size", "a"])
    fields[name].addEventListener("input", () => update(name));
  fields.category.addEventListener("change", () => loadCategory(fields.category.value));
  file.addEventListener("change", async () => {
    if (!file.files.length) return;
    csvIn.value = await file.files[0].text();
    importCsv(csvIn.value);
  });

  // ----- maps table --------------------------------------------------------------------------------
  const rowActions = {
    edit: () => update("maps"),
    keydown: nudge,
    remove: removeMap,
  };

  function setMaps(list) {
    mapsBody.replaceChildren(...list.map((values) => mapRow(values, facts.coefficients, rowActions)));
    numberMaps();
  }

  function numberMaps() {
    [...mapsBody.rows].forEach((tr, i) => (tr.cells[0].textContent = String(i)));
  }

  function mapInputs() {
    return [...mapsBody.rows].map((tr) => [...tr.querySelectorAll("input")]);
  }

  function nudge(ev, input) {
    if (ev.key !== "ArrowUp" && ev.key !== "ArrowDown") return;
    const v = text.parseNumber(input.value);
    if (v === null) return;
    ev.preventDefault();
    const d = (ev.shiftKey ? 0.1 : ev.altKey ? 0.001 : 0.01) * (ev.key === "ArrowUp" ? 1 : -1);
    input.value = text.shortest(Number((v + d).toPrecision(12)));
    update("maps", input);
  }

  function addMap() {
    const list = mapInputs();
    if (list.length >= LIMITS.maxMaps) return show("maps", `at most ${LIMITS.maxMaps} maps`);
    const ps = list.map((cells) => text.parseNumber(cells[6].value)).filter((p) => p !== null);
    const p = ps.length ? ps.reduce((s, x) => s + x, 0) / ps.length : 1;
    // half-size, off-centre: a contraction that keeps the attractor bounded
    const k = list.length;
    const values = [0.5, 0, 0, 0.5, ((k % 3) - 1) * 0.5, (((k + 1) % 3) - 1) * 0.5, p];
    mapsBody.append(mapRow(values, facts.coefficients, rowActions));
    numberMaps();
    update("maps");
  }

  function removeMap(tr) {
    tr.remove();
    numberMaps();
    update("maps");
  }

  function pFromDet() {
    const state = readForm(true);
    if (!state) return;
    const ps = core.probabilitiesFromDeterminants(state.maps.map((r) => r.slice(0, 6)));
    mapInputs().forEach((cells, i) => (cells[6].value = text.shortest(ps[i])));
    update("maps");
  }

  function revert() {
    if (loaded) setMaps(loaded.rows);
    update("maps");
  }

  // ----- reading the form --------------------------------------------------------------------------
  function show(name, message) {
    if (msgs[name]) msgs[name].textContent = message;
    return null;
  }

  function clearMessages() {
    for (const m of Object.values(msgs)) if (m !== msgs["csv-in"]) m.textContent = "";
    for (const el of root.querySelectorAll(".ofdb-x-invalid")) el.classList.remove("ofdb-x-invalid");
  }

  function bad(name, input, message) {
    input.classList.add("ofdb-x-invalid");
    show(name, message);
    return false;
  }

  /** The whole form as a state, or null with messages beside the offending fields. */
  function readForm(mapsOnly = false) {
    let ok = true;
    const s = { category: loaded ? loaded.k : null };
    if (!mapsOnly) {
      s.row = Number(fields.row.value);
      s.flip = fields.flip.value;
      s.mode = fields.mode.value;
      const ints = [
        ["seed", 0, LIMITS.maxSeed],
        ["points", 2, LIMITS.maxPoints],
        ["size", LIMITS.minSize, LIMITS.maxSize],
      ];
      for (const [name, lo, hi] of ints) {
        s[name] = text.parseInteger(fields[name].value, lo, hi);
        if (s[name] === null)
          ok = bad(name, fields[name], `${name}: a whole number from ${lo} to ${thousands(hi)}`);
      }
      s.aWeight = text.parseNumber(fields.a.value);
      if (s.aWeight === null) ok = bad("a", fields.a, "a weight: not a number");
    }
    const list = mapInputs();
    s.maps = list.map((cells, i) =>
      cells.map((input, q) => {
        const v = text.parseNumber(input.value);
        const name = q < 6 ? facts.coefficients[q] : "p";
        if (v === null) ok = bad("maps", input, `map ${i}, ${name}: not a number`);
        else if (q === 6 && v < 0) ok = bad("maps", input, `map ${i}, p: must be >= 0`);
        return v;
      }),
    );
    if (!list.length) ok = show("maps", "empty system: a system needs at least one map (add one)") ?? false;
    else if (ok && !core.normalise(s.maps.map((r) => r[6])))
      ok = show("maps", "at least one map needs a probability above 0") ?? false;
    return ok ? s : null;
  }

  const sameRows = (a, b) =>
    a.length === b.length && a.every((r, i) => r.every((v, q) => Object.is(v, b[i][q])));

  // ----- drawing -----------------------------------------------------------------------------------
  function filterLit(maps, probs) {
    const key = JSON.stringify([maps, Array.from(probs)]);
    if (!filterCache.has(key)) {
      const f = facts.filter;
      const res = core.render(maps, probs, core.viewWeights(f.a_weight, 0, facts.fluctuation_factors), {
        size: f.size,
        nPoints: f.points,
        pad: f.pad,
        chaosSeed: facts.chaos_seed,
        mode: "point",
        flip: false,
      });
      if (filterCache.size > 64) filterCache.clear();
      filterCache.set(key, { lit: core.litPixels(res.image, 1), diverged: res.diverged });
    }
    return filterCache.get(key);
  }

  /** Re-read the form and draw it; ``where`` names the field a failure is reported beside. */
  function update(where = "maps") {
    const t0 = performance.now();
    clearMessages();
    const s = readForm();
    if (!s) return stale("the form has an error (see the message beside it)");
    const edited = !loaded || !sameRows(s.maps, loaded.rows);
    const maps = s.maps.map((r) => r.slice(0, 6));
    const probs = core.normalise(s.maps.map((r) => r[6]));
    const weights = core.viewWeights(s.aWeight, s.row, facts.fluctuation_factors);
    const opts = {
      size: s.size,
      nPoints: s.points,
      pad: facts.pad,
      chaosSeed: facts.chaos_seed,
      mode: s.mode,
      maskSeed: s.seed,
    };
    const res = core.render(maps, probs, weights, opts);
    if (res.diverged || res.kept === 0) {
      const why = res.diverged
        ? `diverges: a point reaches infinity or NaN at step ${res.firstBad} (FractalDB's NaN rule would keep ${thousands(res.kept)} points)`
        : "no point left to draw";
      show(where, why);
      return stale(why);
    }
    if (canvas.width !== s.size) canvas.width = canvas.height = s.size;
    ctx.putImageData(
      new ImageData(core.toRGBA(res.image, s.size, res.channels, s.flip), s.size, s.size),
      0,
      0,
    );
    good = { ...s, maps: edited ? s.maps : null };
    const filter = filterLit(maps, probs);
    lastMs = performance.now() - t0;
    showReadouts(s, res, filter, edited, maps, weights, probs);
    wrap.classList.remove("ofdb-x-is-stale");
    status.textContent = "";
    clearTimeout(publishTimer);
    publishTimer = setTimeout(publish, PUBLISH_DELAY_MS);
    return true;
  }

  /** The drawn state to the URL and the host, once a burst of updates is over (replaceState is slow). */
  function publish() {
    const hash = text.encodeState(good);
    if (host.useUrl && location.hash !== hash) history.replaceState(null, "", hash);
    if (host.onGood) host.onGood(good, hash);
  }

  function stale(why) {
    wrap.classList.add("ofdb-x-is-stale");
    status.textContent = `${why}. The picture is the last good one${good ? "" : " (none yet)"}.`;
    return false;
  }

  function showReadouts(s, res, filter, edited, maps, weights, probs) {
    const total = s.size * s.size;
    const f = facts.filter;
    const fTotal = f.size * f.size;
    const passes = filter.lit / fTotal >= f.rate;
    const factors = maps.map((m) =>
      core.spectralNorm(m[0] * weights[0], m[1] * weights[1], m[2] * weights[2], m[3] * weights[3]),
    );
    [...mapsBody.rows].forEach((tr, i) => {
      tr.cells[8].textContent = factors[i].toFixed(3);
      tr.cells[8].classList.toggle("ofdb-x-expanding", !(factors[i] < 1));
    });
    const record =
      !edited && loaded && loaded.lit !== null && loaded.lit !== undefined
        ? `; the search recorded ${pct(loaded.lit, fTotal)}`
        : "";
    const lines = [
      ["fill rate (this picture)", pct(core.litPixels(res.image, res.channels), total)],
      [
        `search filter (${f.size} px, ${thousands(f.points)} points, point mode, a x ${f.a_weight}, at least ${f.rate})`,
        `${pct(filter.lit, fTotal)}: ${passes ? "passes" : "fails"}${filter.diverged ? " (diverges at a x 1)" : ""}${record}`,
      ],
      [
        "contraction (largest singular value per map, as drawn)",
        `${factors.map((x) => x.toFixed(3)).join(", ")}: ${factors.every((x) => x < 1) ? "all contractive" : "not all contractive"}`,
      ],
      ["update", `${lastMs.toFixed(1)} ms`],
    ];
    readouts.replaceChildren(
      ...lines.map(([k, v], i) =>
        h(
          "tr",
          { "data-readout": ["fill", "filter", "contraction", "update"][i] },
          h("th", {}, k),
          h("td", {}, v),
        ),
      ),
    );
    source.textContent = loaded
      ? `search category ${name5(loaded.k)}${edited ? ", edited" : ""}`
      : "a system of your own";
    link.value = host.useUrl
      ? location.href.replace(/#.*$/, "") + text.encodeState(good)
      : text.encodeState(good);
    csvOut.value = text.formatRows(maps, probs);
    download.download = loaded && !edited ? `${name5(loaded.k)}.csv` : "system.csv";
  }

  // ----- categories, URL, CSV ----------------------------------------------------------------------
  function step(d) {
    const k = text.parseInteger(fields.category.value, 0, LIMITS.maxSeed);
    const base = k !== null ? k : loaded ? loaded.k : 0;
    loadCategory(String(Math.max(0, base + d)));
  }

  /** Load category ``value`` (text) from the host, then draw; ``then`` adjusts the form first. */
  async function loadCategory(value, then = null) {
    const max = host.maxCategory ?? LIMITS.maxSeed;
    const k = text.parseInteger(value, 0, max);
    fields.category.value = String(value).trim();
    clearMessages();
    if (k === null) {
      bad(
        "category",
        fields.category,
        `category: a whole number from 0 to ${thousands(max)}${host.maxCategory != null ? ` (this page embeds the first ${thousands(max + 1)}; the notebook's widget searches further)` : ""}`,
      );
      return stale("no such category");
    }
    const mine = ++token;
    let got = host.category(k);
    if (got && typeof got.then === "function") {
      status.textContent = `searching category ${k}\u2026`;
      got = await got;
    }
    if (mine !== token) return false;
    if (!got || got.error) {
      bad("category", fields.category, `category ${k}: ${got ? got.error : "not available"}`);
      return stale("category not loaded");
    }
    loaded = { k, rows: got.rows.map((r) => r.map(Number)), lit: got.lit };
    fields.category.value = String(k);
    setMaps(loaded.rows);
    if (then) then();
    return update("category");
  }

  function importCsv(csv) {
    msgs["csv-in"].textContent = "";
    const parsed = text.parseRows(csv);
    if (parsed.error) {
      csvIn.classList.add("ofdb-x-invalid");
      msgs["csv-in"].textContent = `import: ${parsed.error}`;
      return stale("import refused");
    }
    csvIn.classList.remove("ofdb-x-invalid");
    loaded = loaded && sameRows(parsed.rows, loaded.rows) ? loaded : null;
    setMaps(parsed.rows);
    return update("csv-in");
  }

  /** Apply a state hash (as the URL carries it); fields it lacks take the defaults. */
  function setHash(hash) {
    const { fields: f, maps, unknown } = text.decodeHash(hash);
    const set = (name, value) => (fields[name].value = value);
    const offered = (name, value) => [...fields[name].options].some((o) => o.value === value);
    set("row", offered("row", f.row) ? f.row : String(view.row));
    set("flip", offered("flip", f.flip) ? f.flip : facts.flips[0]);
    set("mode", offered("mode", f.mode) ? f.mode : view.mode);
    set("seed", f.seed ?? String(view.seed));
    set("points", f.points ?? String(view.points));
    set("size", f.size ?? String(view.size));
    set("a", f.a ?? text.shortest(view.a_weight));
    const tooMany = maps !== null && maps.length > LIMITS.maxMaps;
    const notes = [
      ...(unknown.length ? [`ignored in the link: ${unknown.join(", ")}`] : []),
      ...(tooMany ? [`maps: the link holds more than ${LIMITS.maxMaps}; ignored`] : []),
    ];
    const note = notes.join("; ");
    const withMaps = () => {
      if (maps && !tooMany)
        setMaps(maps.map((r) => (r.length === 7 ? r : [...r, ...Array(7).fill("")].slice(0, 7))));
    };
    const done = (ok) => {
      if (note) status.textContent = note;
      return ok;
    };
    if (f.c === "" || (f.c === undefined && maps)) {
      loaded = null;
      fields.category.value = "";
      withMaps();
      return Promise.resolve(done(update("maps")));
    }
    return loadCategory(f.c ?? "0", withMaps).then(done);
  }

  async function augment() {
    if (!good) return;
    tiles.replaceChildren("rendering in the kernel\u2026");
    const got = await host.augment(good);
    tiles.replaceChildren(
      ...(got.tiles || []).map((t) =>
        h(
          "figure",
          {},
          h("img", { src: `data:image/png;base64,${t.png}`, alt: t.title }),
          h("figcaption", {}, t.title),
        ),
      ),
      ...(got.notes || []).map((n) => h("p", {}, n)),
      got.error ? h("p", { class: "ofdb-x-msg" }, got.error) : "",
    );
  }

  function copyLink() {
    link.select();
    if (navigator.clipboard) navigator.clipboard.writeText(link.value).catch(() => {});
  }

  const onHash = () => {
    if (good && location.hash !== text.encodeState(good)) setHash(location.hash);
  };
  if (host.useUrl) window.addEventListener("hashchange", onHash);
  const ready = setHash(host.useUrl ? location.hash : host.initial || "");

  return {
    ready,
    setHash,
    state: () => good,
    hash: () => (good ? text.encodeState(good) : ""),
    lastUpdateMs: () => lastMs,
    destroy: () => {
      clearTimeout(publishTimer);
      window.removeEventListener("hashchange", onHash);
    },
  };
}
