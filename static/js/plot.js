// Small canvas plotting for the descent page: a frame mapping data to pixels, curves, points,
// heatmaps of a grid, paths. Colours are colour-blind safe (Okabe-Ito), shapes carry meaning too;
// COLOURS is the one palette of every page (runs, curves, classes).
import { fmt } from "./format.js";
import { t } from "./i18n.js";

export const COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7"];

// Chart text that reads from the back of a room: larger and black in projector mode. One place for
// the canvas plots here, the network drawings and the Chart.js curves (chartFont).
export function chartText() {
  const big = document.documentElement.classList.contains("projector");
  return { size: big ? 24 : 15, colour: big ? "#000" : "#222", family: "DejaVu Sans, sans-serif" };
}

export const canvasFont = (scale = 1, weight = "") => {
  const { size, family } = chartText();
  return `${weight} ${Math.round(size * scale)}px ${family}`.trim();
};

// Chart.js's options for the same text: ticks, titles and legends (`scale` of the base size).
export function chartFont(scale = 1) {
  const { size, colour } = chartText();
  return { font: { size: Math.round(size * scale), family: chartText().family }, color: colour };
}

export class Frame {
  constructor(canvas, xRange, yRange, pad = 44) {
    pad = Math.round(pad * chartText().size / 15);  // room for the tick labels at their size
    const dpr = window.devicePixelRatio || 1;
    const { width, height } = canvas.getBoundingClientRect();
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    this.ctx = canvas.getContext("2d");
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    Object.assign(this, { canvas, width, height, pad, xRange, yRange });
    this.ctx.clearRect(0, 0, width, height);
  }

  x(v) { const [a, b] = this.xRange; return this.pad + ((v - a) / (b - a)) * (this.width - 1.5 * this.pad); }
  y(v) { const [a, b] = this.yRange; return this.height - this.pad - ((v - a) / (b - a)) * (this.height - 1.5 * this.pad); }
  invert(px, py) {
    const [a, b] = this.xRange, [c, d] = this.yRange;
    return [a + ((px - this.pad) / (this.width - 1.5 * this.pad)) * (b - a),
            c + ((this.height - this.pad - py) / (this.height - 1.5 * this.pad)) * (d - c)];
  }

  axes(xLabel, yLabel) {
    const ctx = this.ctx;
    ctx.strokeStyle = "#333";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(this.pad, this.pad / 2);
    ctx.lineTo(this.pad, this.height - this.pad);
    ctx.lineTo(this.width - this.pad / 2, this.height - this.pad);
    ctx.stroke();
    const { size, colour } = chartText();
    ctx.fillStyle = colour;
    ctx.font = canvasFont();
    ctx.textAlign = "center";
    for (const v of ticks(this.xRange)) {
      ctx.fillText(fmt(v), this.x(v), this.height - this.pad + size + 3);
    }
    ctx.textAlign = "right";
    for (const v of ticks(this.yRange)) ctx.fillText(fmt(v), this.pad - 6, this.y(v) + size / 3);
    ctx.textAlign = "center";
    ctx.fillText(xLabel, this.width / 2, this.height - 6);
    ctx.save();
    ctx.translate(size * 0.9, this.height / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(yLabel, 0, 0);
    ctx.restore();
  }

  line(points, colour, width = 3, dash = []) {
    const ctx = this.ctx;
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.setLineDash(dash);
    ctx.beginPath();
    points.forEach(([a, b], i) => (i ? ctx.lineTo(this.x(a), this.y(b)) : ctx.moveTo(this.x(a), this.y(b))));
    ctx.stroke();
    ctx.setLineDash([]);
  }

  marker([a, b], colour, shape = "circle", size = 8) {
    const ctx = this.ctx, px = this.x(a), py = this.y(b);
    ctx.fillStyle = colour;
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 2;
    ctx.beginPath();
    if (shape === "triangle") {
      ctx.moveTo(px, py - size);
      ctx.lineTo(px + size, py + size * 0.8);
      ctx.lineTo(px - size, py + size * 0.8);
      ctx.closePath();
    } else if (shape === "square") {
      ctx.rect(px - size, py - size, 2 * size, 2 * size);
    } else {
      ctx.arc(px, py, size, 0, 2 * Math.PI);
    }
    ctx.fill();
    ctx.stroke();
  }

  // Draw what `draw()` draws clipped to the plotting area (a path that runs off stays inside).
  clipped(draw) {
    const ctx = this.ctx, x0 = this.x(this.xRange[0]), x1 = this.x(this.xRange[1]);
    const y0 = this.y(this.yRange[1]), y1 = this.y(this.yRange[0]);
    ctx.save();
    ctx.beginPath();
    ctx.rect(x0 - 2, y0 - 2, x1 - x0 + 4, y1 - y0 + 4);
    ctx.clip();
    draw();
    ctx.restore();
  }

  // A marker that stays in view: a point outside the plot is drawn at the edge, with an arrow
  // pointing to where it really is. True if it had to be pinned.
  pinned([a, b], colour, size = 10) {
    const [xa, xb] = this.xRange, [ya, yb] = this.yRange;
    const ca = Math.min(xb, Math.max(xa, a)), cb = Math.min(yb, Math.max(ya, b));
    this.marker([ca, cb], colour, "circle", size);
    if (ca === a && cb === b) return false;
    const ctx = this.ctx, px = this.x(ca), py = this.y(cb);
    const dx = Math.sign(a - ca), dy = -Math.sign(b - cb);  // screen direction of the real point
    const len = Math.hypot(dx, dy) || 1, ux = dx / len, uy = dy / len;
    // an arrow inside the plot, pointing through the pinned ball to where it really is
    const tail = [px - ux * (size + 44), py - uy * (size + 44)], head = [px - ux * (size + 6), py - uy * (size + 6)];
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 4;
    ctx.beginPath();
    ctx.moveTo(...tail);
    ctx.lineTo(head[0] - ux * 10, head[1] - uy * 10);
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(...head);
    ctx.lineTo(head[0] - ux * 14 - uy * 9, head[1] - uy * 14 + ux * 9);
    ctx.lineTo(head[0] - ux * 14 + uy * 9, head[1] - uy * 14 - ux * 9);
    ctx.closePath();
    ctx.fill();
    return true;
  }

  // A grid of values (rows from the top) as filled cells; `colour(v)` gives a CSS colour.
  heatmap(grid, colour) {
    const rows = grid.length, cols = grid[0].length;
    const x0 = this.x(this.xRange[0]), x1 = this.x(this.xRange[1]);
    const y0 = this.y(this.yRange[1]), y1 = this.y(this.yRange[0]);
    const w = (x1 - x0) / cols, h = (y1 - y0) / rows;
    grid.forEach((row, r) => row.forEach((v, c) => {
      this.ctx.fillStyle = colour(v);
      this.ctx.fillRect(x0 + c * w, y0 + r * h, w + 0.6, h + 0.6);
    }));
  }
}

export function ticks([a, b], n = 5) {
  const step = niceStep((b - a) / n);
  const out = [];
  for (let t = Math.ceil(a / step) * step; t <= b + 1e-9; t += step) out.push(Math.abs(t) < 1e-12 ? 0 : t);
  return out;
}

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
}


// Contour-like bands: the log of the loss, quantised, from light (low) to dark blue (high).
export function bands(min, max, levels = 14) {
  const lo = Math.log10(Math.max(min, 1e-6)), hi = Math.log10(Math.max(max, 1e-5));
  return (v) => {
    const t = Math.min(1, Math.max(0, (Math.log10(Math.max(v, 1e-6)) - lo) / (hi - lo || 1)));
    const band = Math.floor(t * levels) / levels;
    const light = 96 - band * 58;
    return `hsl(205, ${40 + band * 30}%, ${light}%)`;
  };
}

// A small loss-per-step plot; runs = [{loss: [...], colour}].
export function lossPlot(canvas, runs, upTo) {
  const all = runs.flatMap((r) => r.loss.slice(0, upTo + 1)).filter(isFinite);
  const maxSteps = Math.max(1, ...runs.map((r) => Math.min(upTo, r.loss.length - 1)));
  const top = Math.max(...all, 1e-9);
  // room on the left for the longest tick label (a diverging loss reads 7.37e+4)
  const pad = Math.max(40, 14 + 9 * Math.max(...ticks([0, top * 1.05]).map((v) => fmt(v).length)));
  const frame = new Frame(canvas, [0, maxSteps], [0, top * 1.05], pad);
  frame.axes(t("step"), t("loss"));
  for (const run of runs) {
    frame.line(run.loss.slice(0, upTo + 1).map((v, i) => [i, Math.min(v, top * 1.05)]), run.colour, 2.5);
  }
  return frame;
}
