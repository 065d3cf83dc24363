// The explorer on a book page: the first categories of the exact search come from categories.json
// beside this file (written by ``python -m ofdb_study vendor --book book``); no kernel, no network.

import { probabilitiesFromDeterminants } from "./ifs-core.js";
import { mount } from "./ifs-explorer.js";

/** The categories of the data file: ``rows(k)`` gives category k's rows a..f,p. */
export function decodeCategories(doc) {
  const bytes = Uint8Array.from(atob(doc.maps), (ch) => ch.charCodeAt(0));
  const data = new DataView(bytes.buffer);
  const starts = [0];
  for (const n of doc.n_maps) starts.push(starts[starts.length - 1] + n);
  if (bytes.length !== 48 * starts[starts.length - 1])
    throw new Error("categories.json: maps and n_maps disagree");
  return {
    count: doc.n_maps.length,
    rows(k) {
      const maps = [];
      for (let j = starts[k]; j < starts[k + 1]; j++) {
        const m = [];
        for (let q = 0; q < 6; q++) m.push(data.getFloat64(8 * (6 * j + q), true));
        maps.push(m);
      }
      const p = probabilitiesFromDeterminants(maps);
      return maps.map((m, i) => [...m, p[i]]);
    },
  };
}

/** Load the data and mount the explorer in ``el``, its state in the page's URL. */
export async function start(el) {
  let doc;
  try {
    const got = await fetch(new URL("categories.json", import.meta.url));
    if (!got.ok) throw new Error(`HTTP ${got.status}`);
    doc = await got.json();
  } catch (err) {
    el.textContent = `The explorer's data did not load (${err.message}); build the book after \`python -m ofdb_study vendor --book book\`.`;
    return null;
  }
  const cats = decodeCategories(doc);
  const api = mount(el, {
    facts: doc.facts,
    maxCategory: cats.count - 1,
    useUrl: true,
    category: (k) => (k < cats.count ? { rows: cats.rows(k), lit: doc.lit[k] } : { error: "not embedded" }),
  });
  el.ofdbExplorer = api;
  await api.ready;
  el.dataset.ready = "true";
  return api;
}
