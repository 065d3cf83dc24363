// The OFDB renderer in plain JavaScript, exact to the pixel against ofdb_study.fractals.render.
//
// JavaScript numbers are IEEE doubles and V8 never fuses a multiply and an add, so every step below
// is written in the same order of operations as the numba kernels (ofdb_study/fractals/kernels.py):
// the seed-100 MT19937 stream of NumPy's legacy RandomState, the chaos game, the public NaN rule, the
// rescale with truncation to uint16, the point / patch / colour drawing and the flip. No DOM here.

// ---------------------------------------------------------------------------------------------
// MT19937, as NumPy's legacy RandomState (mt.py): seeded with init_genrand, doubles from two words.

const MT_N = 624;
const MT_M = 397;
const MATRIX_A = 0x9908b0df;

/** NumPy's ``RandomState(seed)`` generator for one stream; ``randomSample()`` is ``random_sample``. */
export class MT19937 {
  constructor(seed) {
    this.key = new Uint32Array(MT_N);
    let s = seed >>> 0;
    for (let i = 0; i < MT_N; i++) {
      this.key[i] = s;
      s = (Math.imul(1812433253, s ^ (s >>> 30)) + i + 1) >>> 0;
    }
    this.pos = MT_N;
  }

  twist() {
    const k = this.key;
    for (let i = 0; i < MT_N; i++) {
      const y = (k[i] & 0x80000000) | (k[(i + 1) % MT_N] & 0x7fffffff);
      k[i] = k[(i + MT_M) % MT_N] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.pos = 0;
  }

  /** The next tempered 32-bit word. */
  nextU32() {
    if (this.pos >= MT_N) this.twist();
    let y = this.key[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A uniform in [0, 1) from 53 bits: ``((a >> 5) * 2**26 + (b >> 6)) / 2**53``. */
  randomSample() {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }
}

const uniformCache = new Map();

/** The first ``n`` uniforms of ``RandomState(seed).random_sample`` (a cached, growing prefix). */
export function chaosUniforms(n, seed) {
  const have = uniformCache.get(seed);
  if (have && have.length >= n) return have.subarray(0, n);
  const out = new Float64Array(Math.max(n, have ? 2 * have.length : 0));
  const rng = new MT19937(seed);
  for (let i = 0; i < out.length; i++) out[i] = rng.randomSample();
  uniformCache.set(seed, out);
  return out.subarray(0, n);
}

// ---------------------------------------------------------------------------------------------
// Probabilities, as the package sums them.

/** NumPy's ``sum`` of a float64 vector: a plain loop below 8 values, else pairwise with 8 lanes. */
export function numpySum(v, start = 0, n = v.length) {
  if (n < 8) {
    let s = 0.0;
    for (let i = 0; i < n; i++) s += v[start + i];
    return s;
  }
  if (n <= 128) {
    const r = [];
    for (let j = 0; j < 8; j++) r.push(v[start + j]);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += v[start + i + j];
    let s = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
    for (; i < n; i++) s += v[start + i];
    return s;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return numpySum(v, start, half) + numpySum(v, start + half, n - half);
}

/** ``ExplorerModel.probabilities``: relative weights normalised, left alone when they sum to 1. */
export function normalise(weights) {
  const total = numpySum(weights);
  if (!(total > 0)) return null;
  if (Math.abs(total - 1.0) <= 1e-12) return Float64Array.from(weights);
  return Float64Array.from(weights, (w) => w / total);
}

/** ``ifs.probabilities_from_determinants``: ``|a d - b c|`` over their sum, summed in map order. */
export function probabilitiesFromDeterminants(maps) {
  const dets = maps.map((m) => Math.abs(m[0] * m[3] - m[1] * m[2]));
  let total = 0.0;
  for (const d of dets) total += d;
  return Float64Array.from(dets, (d) => d / total);
}

/** FractalDB's fluctuation row ``row`` (0..24) as six factors on a..f (``ifs.fluctuation_weights``). */
export function fluctuationRow(row, factors) {
  const w = [1, 1, 1, 1, 1, 1];
  if (row > 0) w[Math.floor((row - 1) / factors.length)] = factors[(row - 1) % factors.length];
  return w;
}

/** The largest singular value of the 2x2 linear part ``[[a, b], [c, d]]`` (close form; approximate). */
export function spectralNorm(a, b, c, d) {
  return (Math.hypot(a + d, b - c) + Math.hypot(a - d, b + c)) / 2;
}

// ---------------------------------------------------------------------------------------------
// The chaos game, the NaN rule and the rescale (kernels.chaos_game, nan_rule_and_rescale).

const NAN_BACKOFF = 100;
const GRAY = 127;
let scratch = null;

function buffers(n) {
  if (!scratch || scratch.xs.length < n) {
    scratch = {
      xs: new Float64Array(n),
      ys: new Float64Array(n),
      px: new Uint16Array(n),
      py: new Uint16Array(n),
    };
  }
  return scratch;
}

/**
 * Points ``0 .. n - 1`` from (0, 0); step ``i`` takes the first map ``j`` with ``u[i - 1] <= cum[j]``
 * (none: the point repeats). Returns the running min and max of x and y and whether a value went
 * infinite or NaN (a NaN, once reached, stays in every later point).
 */
export function chaosGame(coef, cum, u, n, xs, ys) {
  const nMaps = cum.length;
  let x = 0.0;
  let y = 0.0;
  let lox = 0.0;
  let hix = 0.0;
  let loy = 0.0;
  let hiy = 0.0;
  xs[0] = 0.0;
  ys[0] = 0.0;
  for (let i = 1; i < n; i++) {
    const r = u[i - 1];
    let j = 0;
    while (j < nMaps && !(r <= cum[j])) j++;
    if (j < nMaps) {
      const b = 6 * j;
      const nx = x * coef[b] + y * coef[b + 1] + coef[b + 4];
      y = x * coef[b + 2] + y * coef[b + 3] + coef[b + 5];
      x = nx;
    }
    xs[i] = x;
    ys[i] = y;
    if (x < lox) lox = x;
    if (x > hix) hix = x;
    if (y < loy) loy = y;
    if (y > hiy) hiy = y;
  }
  const nan = x !== x || y !== y;
  const finite = !nan && Number.isFinite(lox + hix + loy + hiy);
  return { lox, hix, loy, hiy, nan, finite };
}

/** The public NaN rule on ``key``: drop the 100 points before its first NaN (wrapping) and every NaN. */
function deleteNanRun(key, other, length, total) {
  let first = -1;
  for (let i = 0; i < length; i++) {
    if (key[i] !== key[i]) {
      first = i;
      break;
    }
  }
  if (first < 0) {
    if (length === total) return length;
    first = length;
  }
  const lo = first - NAN_BACKOFF;
  let kept = 0;
  for (let i = 0; i < length; i++) {
    let gone = key[i] !== key[i];
    if (!gone) gone = lo >= 0 ? lo <= i && i < first : i < first || i >= total + lo;
    if (!gone) {
      key[kept] = key[i];
      other[kept] = other[i];
      kept++;
    }
  }
  return kept;
}

function minMax(v, length) {
  let lo = v[0];
  let hi = v[0];
  for (let i = 1; i < length; i++) {
    if (v[i] < lo) lo = v[i];
    if (v[i] > hi) hi = v[i];
  }
  return [lo, hi];
}

/** Shift by the minimum when negative, stretch to ``span`` px, add ``pad``, cast as NumPy does on x86-64. */
function shiftAndScale(v, length, lo, hi, span, pad, out) {
  const shift = lo < 0.0 ? lo : 0.0;
  const rng = hi - shift - (lo < 0.0 ? 0.0 : lo);
  if (lo === -Infinity) {
    out.fill(0, 0, length);
    return;
  }
  for (let i = 0; i < length; i++) {
    const t = ((v[i] - shift) / rng) * span + pad;
    out[i] = t < 2147483648.0 && t > -2147483649.0 ? (t | 0) & 0xffff : 0;
  }
}

/**
 * The kept points of one render in pixel coordinates (before drawing and flipping).
 *
 * @param {Float64Array} coef 6 per map: the weighted coefficients a..f.
 * @param {Float64Array} cum cumulative probabilities, summed in map order.
 * @returns {{px: Uint16Array, py: Uint16Array, n: number, diverged: boolean, firstBad: number}}
 *   ``diverged``: some point went infinite or NaN; ``firstBad``: the first such step, else -1.
 */
export function points(coef, cum, { size, nPoints, pad, chaosSeed }) {
  const u = chaosUniforms(nPoints - 1, chaosSeed);
  const { xs, ys, px, py } = buffers(nPoints);
  const st = chaosGame(coef, cum, u, nPoints, xs, ys);
  let firstBad = -1;
  if (!st.finite) {
    for (let i = 0; i < nPoints && firstBad < 0; i++) {
      if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) firstBad = i;
    }
  }
  const span = size - 2 * pad;
  let n = nPoints;
  if (!st.nan) {
    shiftAndScale(xs, n, st.lox, st.hix, span, pad, px);
    shiftAndScale(ys, n, st.loy, st.hiy, span, pad, py);
  } else {
    n = deleteNanRun(xs, ys, n, n);
    n = deleteNanRun(ys, xs, n, n);
    if (n > 0) {
      const [lx, hx] = minMax(xs, n);
      shiftAndScale(xs, n, lx, hx, span, pad, px);
      const [ly, hy] = minMax(ys, n);
      shiftAndScale(ys, n, ly, hy, span, pad, py);
    }
  }
  return { px, py, n, diverged: !st.finite, firstBad };
}

// ---------------------------------------------------------------------------------------------
// Drawing (kernels.draw_points, draw_patches, draw_colors) and the seeded patch masks.

// 64-bit words as (hi, lo) pairs of uint32, so splitmix64 runs exactly without BigInt. The
// helpers return the low word and leave the high word in ``hi64`` (no allocation per point).
let hi64 = 0;

function mul64(ah, al, bh, bl) {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const carry = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  hi64 = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  return (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
}

function add64(ah, al, bh, bl) {
  const s = al + bl;
  hi64 = (ah + bh + (s > 0xffffffff ? 1 : 0)) >>> 0;
  return s >>> 0;
}

function splitmix64Lo(zh, zl) {
  let l = add64(zh, zl, 0x9e3779b9, 0x7f4a7c15);
  let h = hi64;
  l = mul64((h ^ (h >>> 30)) >>> 0, (l ^ ((l >>> 30) | (h << 2))) >>> 0, 0xbf58476d, 0x1ce4e5b9);
  h = hi64;
  l = mul64((h ^ (h >>> 27)) >>> 0, (l ^ ((l >>> 27) | (h << 5))) >>> 0, 0x94d049bb, 0x133111eb);
  h = hi64;
  hi64 = (h ^ (h >>> 31)) >>> 0;
  return (l ^ ((l >>> 31) | (h << 1))) >>> 0;
}

/** ``kernels._splitmix64`` of the 64-bit word (hi, lo); returns [hi, lo]. */
export function splitmix64(zh, zl) {
  const lo = splitmix64Lo(zh, zl);
  return [hi64, lo];
}

/** The key of mask seed ``seed`` (an integer 0 .. 2**53 - 1): ``splitmix64(uint64(seed))``. */
export function maskKey(seed) {
  return splitmix64(Math.floor(seed / 4294967296) >>> 0, seed >>> 0);
}

/** ``kernels._mask_of``: the 9-bit mask (1..511) of point ``i`` under ``key`` from ``maskKey``. */
export function maskOf(key, i) {
  const lo = add64(key[0], key[1], 0, i >>> 0);
  splitmix64Lo(hi64, lo);
  return 1 + Math.floor((hi64 * 511) / 4294967296);
}

const maskCache = new Map();

/** The masks of points ``0 .. n - 1`` under ``seed`` (a cached prefix: a mask depends on its index only). */
export function patchMasks(seed, n) {
  const have = maskCache.get(seed);
  if (have && have.length >= n) return have;
  const key = maskKey(seed);
  const out = new Uint16Array(Math.max(n, have ? 2 * have.length : 0));
  for (let i = 0; i < out.length; i++) out[i] = maskOf(key, i);
  if (maskCache.size >= 4) maskCache.delete(maskCache.keys().next().value);
  maskCache.set(seed, out);
  return out;
}

/**
 * Draw kept points into a new image: uint8 gray (size * size) for ``point`` and ``patch``, RGB
 * (size * size * 3) for ``color``; ``flip`` turns it top to bottom as the public generator does.
 */
export function draw(pts, size, mode, maskSeed, flip) {
  const { px, py, n } = pts;
  if (mode === "color") return drawColors(px, py, n, size, flip);
  const out = new Uint8Array(size * size);
  if (mode === "point") {
    for (let i = 0; i < n; i++) {
      const x = px[i];
      const y = py[i];
      if (x < size && y < size) out[(flip ? size - 1 - y : y) * size + x] = GRAY;
    }
    return out;
  }
  const masks = patchMasks(maskSeed, n);
  let fits = true;
  for (let i = 0; i < n && fits; i++) fits = px[i] + 4 <= size && py[i] + 4 <= size;
  if (fits) {
    // Every 3x3 block lies inside: no bounds checks (kernels.draw_patches' fast path).
    const step = flip ? -size : size;
    for (let i = 0; i < n; i++) {
      const m = masks[i];
      let o = (flip ? size - 2 - py[i] : py[i] + 1) * size + px[i] + 1;
      for (let r = 0; r < 9; r += 3) {
        out[o] = ((m >> r) & 1) * GRAY;
        out[o + 1] = ((m >> (r + 1)) & 1) * GRAY;
        out[o + 2] = ((m >> (r + 2)) & 1) * GRAY;
        o += step;
      }
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    const m = masks[i];
    const x0 = px[i] + 1;
    const y0 = py[i] + 1;
    for (let r = 0; r < 3; r++) {
      const y = y0 + r;
      if (y >= size) break;
      const base = (flip ? size - 1 - y : y) * size;
      for (let c = 0; c < 3; c++) {
        const x = x0 + c;
        if (x < size) out[base + x] = ((m >> (3 * r + c)) & 1) * GRAY;
      }
    }
  }
  return out;
}

function drawColors(px, py, n, size, flip) {
  const out = new Uint8Array(size * size * 3);
  for (let i = 0; i < n; i++) {
    const x = px[i];
    const y = py[i];
    if (x >= size || y >= size) continue;
    const h = (6.0 * i) / n;
    const sector = Math.trunc(h);
    const f = h - sector;
    const up = Math.trunc(255.0 * f);
    const down = Math.trunc(255.0 * (1.0 - f));
    // sectors 0..5: (255, up, 0) (down, 255, 0) (0, 255, up) (0, down, 255) (up, 0, 255) (255, 0, down)
    const r = sector === 0 || sector === 5 ? 255 : sector === 1 ? down : sector === 4 ? up : 0;
    const g = sector === 0 ? up : sector === 1 || sector === 2 ? 255 : sector === 3 ? down : 0;
    const b = sector === 2 ? up : sector === 3 || sector === 4 ? 255 : sector === 5 ? down : 0;
    const o = 3 * ((flip ? size - 1 - y : y) * size + x);
    out[o] = r;
    out[o + 1] = g;
    out[o + 2] = b;
  }
  return out;
}

/** Lit pixels of an image from ``draw`` (a colour pixel is lit when any channel is). */
export function litPixels(image, channels) {
  let lit = 0;
  for (let p = 0; p < image.length; p += channels) {
    let on = image[p] !== 0;
    for (let k = 1; k < channels; k++) on = on || image[p + k] !== 0;
    if (on) lit++;
  }
  return lit;
}

/**
 * RGBA pixels (opaque) of an image from ``draw`` after one of FractalDB's four flips
 * (``none``, ``tb`` top-bottom, ``lr`` left-right, ``both``), as ``fractals.build`` applies them.
 */
export function toRGBA(image, size, channels, flip) {
  const out = new Uint8ClampedArray(size * size * 4);
  const tb = flip === "tb" || flip === "both";
  const lr = flip === "lr" || flip === "both";
  for (let r = 0; r < size; r++) {
    const sr = tb ? size - 1 - r : r;
    for (let c = 0; c < size; c++) {
      const s = (sr * size + (lr ? size - 1 - c : c)) * channels;
      const o = 4 * (r * size + c);
      out[o] = image[s];
      out[o + 1] = image[s + (channels === 3 ? 1 : 0)];
      out[o + 2] = image[s + (channels === 3 ? 2 : 0)];
      out[o + 3] = 255;
    }
  }
  return out;
}

/**
 * One render, as ``render.render(ifs, size=, n_points=, pad=, mode=, a_weight=, weights=row,
 * mask_seed=, flip=)``.
 *
 * @param {number[][]} maps (N, 6) coefficients a..f.
 * @param {Float64Array} probs (N,) probabilities summing to 1.
 * @param {number[]} weights (6,) factors on a..f (the ``a`` weight times the fluctuation row).
 * @returns {{image: Uint8Array, channels: number, kept: number, diverged: boolean, firstBad: number}}
 */
export function render(maps, probs, weights, opts) {
  const coef = new Float64Array(6 * maps.length);
  maps.forEach((m, j) => {
    for (let q = 0; q < 6; q++) coef[6 * j + q] = m[q] * weights[q];
  });
  const cum = new Float64Array(probs.length);
  let total = 0.0;
  probs.forEach((p, j) => {
    total += p;
    cum[j] = total;
  });
  const pts = points(coef, cum, opts);
  const image = draw(pts, opts.size, opts.mode, opts.maskSeed || 0, opts.flip !== false);
  return {
    image,
    channels: opts.mode === "color" ? 3 : 1,
    kept: pts.n,
    diverged: pts.diverged,
    firstBad: pts.firstBad,
  };
}

/** The six weights of a view: ``a`` times ``aWeight``, then the fluctuation row (``render.effective_weights``). */
export function viewWeights(aWeight, row, factors) {
  const w = fluctuationRow(row, factors);
  w[0] = aWeight * w[0];
  return w;
}
