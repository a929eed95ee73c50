// How numbers are written on every page (one formatter, so a loss reads the same everywhere).

// Four significant digits; very large or small values in exponent form; "–" for none.
export function fmt(v) {
  if (v === undefined || v === null || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

// At most three decimals, no trailing zeros: the numbers of a grid worked by hand.
export const short = (v) => String(Number(v.toFixed(3)));

// A factor in a written-out product: negatives in brackets, as the slides write 3×(−1).
export const term = (v, format = short) => (v < 0 ? `(${format(v)})` : format(v));

// A probability as a whole percentage.
export const percent = (p) => `${Math.round(p * 100)}%`;

// A whole number with thousands separators: 1,234,567 weights.
export const count = (n) => n.toLocaleString("en-US");
