// A small QR code encoder for pages that have no box to ask (direct connect).
// Byte mode only, versions 1 to 25, error correction L/M/Q/H, mask chosen by
// the ISO 18004 penalty rules the same way the box's encoder (segno) does, so
// both draw the same symbol for the same text.

const MAX_VERSION = 25;
// Per version (index 0 unused): error correction codewords per block, and blocks.
const EC_LEN = {
  L: [0, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28, 28, 30, 30, 26],
  M: [0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28],
  Q: [0, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30, 28, 30, 30, 30, 30],
  H: [0, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28, 30, 24, 30, 30, 30],
};
const BLOCKS = {
  L: [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12],
  M: [0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21],
  Q: [0, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20, 23, 23, 25, 27, 29],
  H: [0, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25, 25, 34, 30, 32, 35],
};
const LEVELS = ['L', 'M', 'Q', 'H'];
const FORMAT_BITS = {L: 1, M: 0, Q: 3, H: 2};

// GF(256) arithmetic with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
for (let i = 0, x = 1; i < 255; i++) {
  EXP[i] = x;
  LOG[x] = i;
  x = (x << 1) ^ (x & 0x80 ? 0x11d : 0);
}
for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
const mul = (a, b) => (a && b ? EXP[LOG[a] + LOG[b]] : 0);

function generator(degree) {
  let poly = [1];
  for (let i = 0; i < degree; i++) {
    const next = new Array(poly.length + 1).fill(0);
    poly.forEach((c, j) => {
      next[j] ^= c;
      next[j + 1] ^= mul(c, EXP[i]);
    });
    poly = next;
  }
  return poly.slice(1);
}

function ecCodewords(data, degree) {
  const gen = generator(degree);
  const rest = new Array(degree).fill(0);
  for (const byte of data) {
    const factor = byte ^ rest.shift();
    rest.push(0);
    gen.forEach((g, i) => (rest[i] ^= mul(g, factor)));
  }
  return rest;
}

function rawModules(v) {
  let n = (16 * v + 128) * v + 64;
  if (v >= 2) {
    const k = Math.floor(v / 7) + 2;
    n -= (25 * k - 10) * k - 55;
    if (v >= 7) n -= 36;
  }
  return n;
}

const dataCapacity = (v, level) => Math.floor(rawModules(v) / 8) - EC_LEN[level][v] * BLOCKS[level][v];

function alignmentPositions(v, size) {
  if (v === 1) return [];
  const k = Math.floor(v / 7) + 2;
  const step = Math.ceil((v * 4 + 4) / (k * 2 - 2)) * 2;
  const out = [6];
  for (let pos = size - 7; out.length < k; pos -= step) out.splice(1, 0, pos);
  return out;
}

function bch(value, poly, bits) {
  let rem = value << bits;
  const top = 31 - Math.clz32(poly);
  while (31 - Math.clz32(rem) >= top) rem ^= poly << (31 - Math.clz32(rem) - top);
  return (value << bits) | rem;
}

const MASKS = [
  (i, j) => (i + j) % 2 === 0,
  (i) => i % 2 === 0,
  (i, j) => j % 3 === 0,
  (i, j) => (i + j) % 3 === 0,
  (i, j) => (Math.floor(i / 2) + Math.floor(j / 3)) % 2 === 0,
  (i, j) => ((i * j) % 2) + ((i * j) % 3) === 0,
  (i, j) => (((i * j) % 2) + ((i * j) % 3)) % 2 === 0,
  (i, j) => (((i + j) % 2) + ((i * j) % 3)) % 2 === 0,
];

function chooseVersion(len, level, boost) {
  for (let v = 1; v <= MAX_VERSION; v++) {
    const bits = 4 + (v < 10 ? 8 : 16) + 8 * len;
    if (bits > dataCapacity(v, level) * 8) continue;
    if (boost) {
      for (const up of LEVELS.slice(LEVELS.indexOf(level) + 1)) {
        if (bits <= dataCapacity(v, up) * 8) level = up;
        else break;
      }
    }
    return {v, level};
  }
  throw new RangeError('text too long for a QR code');
}

function codewords(bytes, v, level) {
  const cap = dataCapacity(v, level);
  const bits = [];
  const put = (value, n) => {
    for (let i = n - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  put(4, 4);
  put(bytes.length, v < 10 ? 8 : 16);
  for (const b of bytes) put(b, 8);
  put(0, Math.min(4, cap * 8 - bits.length));
  // Like segno, a stream already on a byte boundary gets a whole zero byte
  // here; anything after the terminator is padding, so readers ignore it.
  put(0, 8 - (bits.length % 8));
  const data = [];
  for (let i = 0; i < bits.length; i += 8) data.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
  for (let pad = 0xec; data.length < cap; pad ^= 0xec ^ 0x11) data.push(pad);

  const nBlocks = BLOCKS[level][v];
  const ecLen = EC_LEN[level][v];
  const shortLen = Math.floor(cap / nBlocks);
  const nShort = nBlocks - (cap % nBlocks);
  const blocks = [];
  for (let b = 0, at = 0; b < nBlocks; b++) {
    const len = shortLen + (b < nShort ? 0 : 1);
    const d = data.slice(at, at + len);
    at += len;
    blocks.push({d, e: ecCodewords(d, ecLen)});
  }
  const out = [];
  for (let i = 0; i <= shortLen; i++) for (const bl of blocks) if (i < bl.d.length) out.push(bl.d[i]);
  for (let i = 0; i < ecLen; i++) for (const bl of blocks) out.push(bl.e[i]);
  return out;
}

/** Penalty score of a masked matrix (format and version areas still light). */
function penalty(m, size) {
  let score = 0;
  let dark = 0;
  const n3 = (seq) => {
    let s = 0;
    for (let idx = 0; idx + 7 <= size; idx++) {
      if (!(seq[idx] && !seq[idx + 1] && seq[idx + 2] && seq[idx + 3] && seq[idx + 4] && !seq[idx + 5] && seq[idx + 6])) continue;
      const before = seq.slice(Math.max(idx - 4, 0), idx).some(Boolean);
      const after = seq.slice(idx + 7, Math.min(idx + 11, size)).some(Boolean);
      if (idx === 0 || idx === size - 7 || !before || !after) {
        s += 40;
        idx += 6;
      } else {
        idx += 3;
      }
    }
    return s;
  };
  const runs = (seq) => {
    let s = 0;
    let run = 1;
    for (let k = 1; k <= size; k++) {
      if (k < size && seq[k] === seq[k - 1]) run++;
      else {
        if (run >= 5) s += run - 2;
        run = 1;
      }
    }
    return s;
  };
  for (let i = 0; i < size; i++) {
    const row = m[i];
    const col = m.map((r) => r[i]);
    score += runs(row) + runs(col) + n3(row) + n3(col);
    for (let j = 0; j < size; j++) {
      dark += row[j];
      if (i && j && row[j] === row[j - 1] && row[j] === m[i - 1][j] && row[j] === m[i - 1][j - 1]) score += 3;
    }
  }
  return score + 10 * Math.floor(Math.abs((dark / (size * size)) * 100 - 50) / 5);
}

/** The module matrix (rows of 0/1, no quiet zone) for `text` in byte mode. */
export function qrMatrix(text, minLevel = 'M', boost = true) {
  const bytes = new TextEncoder().encode(text);
  const {v, level} = chooseVersion(bytes.length, minLevel, boost);
  const size = 4 * v + 17;
  const m = Array.from({length: size}, () => new Array(size).fill(0));
  const fixed = Array.from({length: size}, () => new Array(size).fill(false));
  const set = (i, j, val) => {
    m[i][j] = val ? 1 : 0;
    fixed[i][j] = true;
  };
  for (const [r0, c0] of [[0, 0], [size - 7, 0], [0, size - 7]]) {
    for (let i = -1; i <= 7; i++) {
      for (let j = -1; j <= 7; j++) {
        const r = r0 + i;
        const c = c0 + j;
        if (r < 0 || c < 0 || r >= size || c >= size) continue;
        const ring = Math.max(Math.abs(i - 3), Math.abs(j - 3));
        set(r, c, ring !== 2 && ring !== 4);
      }
    }
  }
  for (let k = 8; k < size - 8; k++) {
    set(6, k, k % 2 === 0);
    set(k, 6, k % 2 === 0);
  }
  const align = alignmentPositions(v, size);
  for (const r of align) {
    for (const c of align) {
      if ((r === 6 && c === 6) || (r === 6 && c === size - 7) || (r === size - 7 && c === 6)) continue;
      for (let i = -2; i <= 2; i++) for (let j = -2; j <= 2; j++) set(r + i, c + j, Math.max(Math.abs(i), Math.abs(j)) !== 1);
    }
  }
  // Format and version areas stay light while masks are compared.
  for (let k = 0; k < 9; k++) {
    if (k !== 6) {
      set(k, 8, 0);
      set(8, k, 0);
    }
    if (k < 8) {
      set(size - 1 - k, 8, 0);
      set(8, size - 1 - k, 0);
    }
  }
  if (v >= 7) {
    for (let i = 0; i < 6; i++) for (let j = size - 11; j < size - 8; j++) {
      set(i, j, 0);
      set(j, i, 0);
    }
  }

  const words = codewords(bytes, v, level);
  let bit = 0;
  const total = words.length * 8;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    const up = ((right + 1) & 2) === 0;
    for (let vert = 0; vert < size; vert++) {
      const i = up ? size - 1 - vert : vert;
      for (let z = 0; z < 2; z++) {
        const j = right - z;
        if (fixed[i][j]) continue;
        m[i][j] = bit < total ? (words[bit >> 3] >> (7 - (bit & 7))) & 1 : 0;
        bit++;
      }
    }
  }

  let best = null;
  MASKS.forEach((fn, mask) => {
    const cand = m.map((row, i) => row.map((val, j) => (fixed[i][j] ? val : val ^ (fn(i, j) ? 1 : 0))));
    const score = penalty(cand, size);
    if (!best || score < best.score) best = {score, mask, cand};
  });
  const out = best.cand;
  const fmt = bch((FORMAT_BITS[level] << 3) | best.mask, 0x537, 10) ^ 0x5412;
  const fb = (k) => (fmt >> k) & 1;
  for (let k = 0; k <= 5; k++) out[k][8] = fb(k);
  out[7][8] = fb(6);
  out[8][8] = fb(7);
  out[8][7] = fb(8);
  for (let k = 9; k < 15; k++) out[8][14 - k] = fb(k);
  for (let k = 0; k < 8; k++) out[8][size - 1 - k] = fb(k);
  for (let k = 8; k < 15; k++) out[size - 15 + k][8] = fb(k);
  out[size - 8][8] = 1;
  if (v >= 7) {
    const vb = bch(v, 0x1f25, 12);
    for (let k = 0; k < 18; k++) {
      const a = size - 11 + (k % 3);
      const b = Math.floor(k / 3);
      out[b][a] = (vb >> k) & 1;
      out[a][b] = (vb >> k) & 1;
    }
  }
  return out;
}

/** The QR code as an <svg> element (a 4-module quiet zone around it). */
export function qrSvg(text, label, level = 'L') {
  const m = qrMatrix(text, level);
  const n = m.length + 8;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${n} ${n}`);
  svg.setAttribute('class', 'qr-img');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('data-testid', 'qr');
  let d = '';
  m.forEach((row, i) => row.forEach((val, j) => {
    if (val) d += `M${j + 4} ${i + 4}h1v1h-1z`;
  }));
  const bg = document.createElementNS(ns, 'rect');
  bg.setAttribute('width', n);
  bg.setAttribute('height', n);
  bg.setAttribute('fill', '#fff');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  path.setAttribute('stroke', 'none');
  svg.append(bg, path);
  return svg;
}
