// Text forms of a system and of the explorer's state: strict number parsing, the package's CSV
// format (``ifs.format_rows``: ``%.18e`` comma rows "a,b,c,d,e,f,p"), and the state as a URL hash.

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A finite number from text, or null. Plain decimal notation only (no hex, no "Infinity"). */
export function parseNumber(text) {
  const t = String(text).trim();
  if (!NUMBER.test(t)) return null;
  const v = Number(t);
  return Number.isFinite(v) ? v : null;
}

/** A whole number from text within [lo, hi], or null. */
export function parseInteger(text, lo, hi) {
  const t = String(text).trim();
  if (!/^[+-]?\d+$/.test(t)) return null;
  const v = Number(t);
  return Number.isSafeInteger(v) && v >= lo && v <= hi ? v : null;
}

/** The shortest text that reads back as the same double (what the fields and the URL show). */
export function shortest(v) {
  return Object.is(v, -0) ? "-0" : String(v);
}

const view = new DataView(new ArrayBuffer(8));

/**
 * ``format(v, ".18e")`` exactly as Python (and C's printf) writes it: the exact binary value rounded
 * to 19 significant digits, ties to even. (``toExponential`` rounds ties away from zero.)
 */
export function formatE18(v) {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  const sign = v < 0 || Object.is(v, -0) ? "-" : "";
  if (v === 0) return `${sign}0.${"0".repeat(18)}e+00`;
  view.setFloat64(0, Math.abs(v));
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = hi >>> 20;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp2 = biased - 1075;
  if (biased === 0) exp2 = -1074;
  else mant |= 1n << 52n;
  // v = mant * 2**exp2 = digits * 10**exp10, digits an integer
  let digits;
  let exp10 = 0;
  if (exp2 >= 0) digits = (mant << BigInt(exp2)).toString();
  else {
    digits = (mant * 5n ** BigInt(-exp2)).toString();
    exp10 = exp2;
  }
  let sci = digits.length - 1 + exp10;
  let kept = digits.slice(0, 19).padEnd(19, "0");
  const rest = digits.slice(19);
  if (rest.length > 0) {
    const head = rest.charCodeAt(0) - 48;
    const tail = /[1-9]/.test(rest.slice(1));
    const odd = (kept.charCodeAt(18) - 48) % 2 === 1;
    if (head > 5 || (head === 5 && (tail || odd))) {
      kept = (BigInt(kept) + 1n).toString();
      if (kept.length > 19) {
        kept = kept.slice(0, 19);
        sci += 1;
      }
    }
  }
  const e = Math.abs(sci).toString().padStart(2, "0");
  return `${sign}${kept[0]}.${kept.slice(1)}e${sci < 0 ? "-" : "+"}${e}`;
}

/** The CSV text of a system, identical to ``ifs.format_rows`` (rows: a..f and the probability). */
export function formatRows(maps, probs) {
  return maps.map((m, i) => [...m, probs[i]].map(formatE18).join(",") + "\n").join("");
}

/**
 * Rows ``a,b,c,d,e,f,p`` from CSV text, checked as ``ifs.read_table`` checks a file.
 *
 * @returns {{rows: number[][]} | {error: string}}
 */
export function parseRows(text) {
  const rows = [];
  const lines = String(text).split(/\r?\n/);
  for (let k = 0; k < lines.length; k++) {
    if (!lines[k].trim()) continue;
    const parts = lines[k].split(",");
    if (parts.length !== 7)
      return { error: `line ${k + 1}: expected 7 values a,b,c,d,e,f,p, got ${parts.length}` };
    const row = parts.map(parseNumber);
    if (row.some((v) => v === null)) return { error: `line ${k + 1}: not a row of finite numbers` };
    rows.push(row);
  }
  if (!rows.length) return { error: "no maps: a system needs at least one row a,b,c,d,e,f,p" };
  if (rows.some((r) => r[6] < 0)) return { error: "probabilities must be >= 0" };
  const total = rows.reduce((s, r) => s + r[6], 0);
  if (Math.abs(total - 1) > 1e-6)
    return { error: `probabilities sum to ${total.toPrecision(9)}, must sum to 1` };
  return { rows };
}

/** ``explorer.model.fluctuation_label``: 'identity' or e.g. 'b x 0.6'. */
export function rowLabel(row, facts) {
  if (row === 0) return "identity";
  const k = Math.floor((row - 1) / facts.fluctuation_factors.length);
  return `${facts.coefficients[k]} x ${facts.fluctuation_factors[(row - 1) % facts.fluctuation_factors.length]}`;
}

// ---------------------------------------------------------------------------------------------
// The state in the URL: "#c=417&row=3&flip=lr&mode=patch&seed=0&points=100000&size=256&a=0.2",
// plus "&maps=a,b,c,d,e,f,p;..." (shortest round-trip numbers) when the system is not a category
// as searched.

const KEYS = ["c", "row", "flip", "mode", "seed", "points", "size", "a"];
/** Rows a link's maps are split into at most: one past the explorer's limit, so that a longer
 * list is known to be too long without splitting all of it. */
const MAX_LINK_MAPS = 65;

/** The hash (with its "#") of a state. */
export function encodeState(s) {
  const parts = [
    `c=${s.category === null ? "" : s.category}`,
    `row=${s.row}`,
    `flip=${s.flip}`,
    `mode=${s.mode}`,
    `seed=${s.seed}`,
    `points=${s.points}`,
    `size=${s.size}`,
    `a=${shortest(s.aWeight)}`,
  ];
  if (s.maps) parts.push(`maps=${s.maps.map((r) => r.map(shortest).join(",")).join(";")}`);
  return `#${parts.join("&")}`;
}

/**
 * The fields of a hash as text (the form parses and checks them like typed input).
 *
 * @returns {{fields: Object<string, string>, maps: (string[][]|null), unknown: string[]}}
 */
export function decodeHash(hash) {
  const fields = {};
  const unknown = [];
  let maps = null;
  for (const part of String(hash).replace(/^#/, "").split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    let value = eq < 0 ? "" : part.slice(eq + 1);
    try {
      value = decodeURIComponent(value);
    } catch {
      unknown.push(key);
      continue;
    }
    if (key === "maps") maps = value ? value.split(";", MAX_LINK_MAPS + 1).map((r) => r.split(",", 8)) : [];
    else if (KEYS.includes(key)) fields[key] = value;
    else unknown.push(key);
  }
  return { fields, maps, unknown };
}
