// A lab report: one PNG of a page's settings, its plots (canvases as they are on screen), a few
// drawn extras (a confusion matrix, a filter sheet) and the lesson link's QR code, so a student
// can hand in what they did; and a printable page (the browser's print, with the chrome hidden).
import { t } from "./i18n.js";
import { studentsLink } from "./students-address.js";

const WIDTH = 1400, PAD = 32;

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = reject;
    img.src = src;
  });
}

// The PNG as a Blob. `parts`: canvases (or {canvas, title}) laid out two to a row.
export async function reportBlob({ title, settings, parts }) {
  const link = await studentsLink();  // the address students can open, not this machine's localhost
  const qr = await loadImage(`/api/qr.svg?text=${encodeURIComponent(link)}`).catch(() => null);
  const cell = (WIDTH - 3 * PAD) / 2;
  const items = parts.filter((p) => p && (p.canvas || p).width > 0).map((p) => (p.canvas ? p : { canvas: p, title: "" }));
  const heights = items.map(({ canvas }) => (cell * canvas.height) / canvas.width + 34);
  const rows = [];
  for (let i = 0; i < items.length; i += 2) rows.push(Math.max(heights[i], heights[i + 1] || 0));
  const top = 150 + Math.max(settings.length * 26, 180);
  const out = document.createElement("canvas");
  out.width = WIDTH;
  out.height = top + rows.reduce((a, b) => a + b + PAD, 0) + PAD;
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = "#111";
  ctx.font = "bold 34px DejaVu Sans, sans-serif";
  ctx.fillText(`NeuronLab · ${title}`, PAD, 60);
  ctx.font = "18px DejaVu Sans, sans-serif";
  ctx.fillText(new Date().toLocaleString(), PAD, 92);
  ctx.fillText(link.length > 110 ? `${link.slice(0, 107)}…` : link, PAD, 120);
  settings.forEach(([k, v], i) => {
    ctx.font = "bold 18px DejaVu Sans, sans-serif";
    ctx.fillText(k, PAD, 160 + i * 26);
    ctx.font = "18px DejaVu Sans, sans-serif";
    ctx.fillText(String(v), PAD + 300, 160 + i * 26);
  });
  if (qr) ctx.drawImage(qr, WIDTH - PAD - 170, 30, 170, 170);
  let y = top;
  rows.forEach((h, r) => {
    items.slice(2 * r, 2 * r + 2).forEach(({ canvas, title: caption }, k) => {
      const x = PAD + k * (cell + PAD);
      ctx.font = "bold 20px DejaVu Sans, sans-serif";
      ctx.fillText(caption, x, y + 22);
      ctx.drawImage(canvas, x, y + 30, cell, (cell * canvas.height) / canvas.width);
    });
    y += h + PAD;
  });
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
}

export async function saveReport(name, spec) {
  const blob = await reportBlob(spec);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `neuronlab-${name}-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, "-")}.png`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}

// A confusion matrix as a picture (rows: true class, columns: the guess).
export function confusionCanvas(matrix, labels) {
  const n = matrix.length, size = 44, c = document.createElement("canvas");
  c.width = c.height = (n + 1) * size;
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.font = "14px DejaVu Sans, sans-serif";
  ctx.textAlign = "center";
  const max = Math.max(...matrix.flat(), 1);
  matrix.forEach((row, i) => row.forEach((v, j) => {
    ctx.fillStyle = i === j ? `rgba(0, 114, 178, ${0.15 + (0.85 * v) / max})` : v ? `rgba(230, 159, 0, ${0.3 + (0.7 * v) / max})` : "#f4f5f7";
    ctx.fillRect((j + 1) * size + 1, (i + 1) * size + 1, size - 2, size - 2);
    ctx.fillStyle = "#111";
    ctx.fillText(String(v), (j + 1.5) * size, (i + 1.5) * size + 5);
  }));
  labels.forEach((l, k) => {
    ctx.fillText(String(l).slice(0, 4), (k + 1.5) * size, size * 0.6);
    ctx.fillText(String(l).slice(0, 4), size * 0.5, (k + 1.5) * size + 5);
  });
  return c;
}

// The first conv layer's filters as a sheet (diverging blue/orange, each filter on its own scale).
export function filterSheet(layer) {
  const [out, , kh, kw] = layer.shape, scale = 10, cols = 8, c = document.createElement("canvas");
  c.width = cols * (kw * scale + 6);
  c.height = Math.ceil(out / cols) * (kh * scale + 6);
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, c.width, c.height);
  layer.weights.forEach((f, o) => {
    const w = f[0], max = Math.max(...w.flat().map(Math.abs), 1e-9);
    w.forEach((row, i) => row.forEach((v, j) => {
      const s = v / max;
      ctx.fillStyle = s < 0 ? `rgb(${255 + s * 255}, ${255 + s * 141}, ${255 + s * 77})` : `rgb(${255 - s * 25}, ${255 - s * 96}, ${255 - s * 255})`;
      ctx.fillRect((o % cols) * (kw * scale + 6) + j * scale, Math.floor(o / cols) * (kh * scale + 6) + i * scale, scale, scale);
    }));
  });
  return c;
}

export function reportButtons(container, onSave) {
  const save = document.createElement("button");
  save.type = "button";
  save.id = "report";
  save.textContent = t("Lab report (PNG)");
  save.addEventListener("click", onSave);
  const print = document.createElement("button");
  print.type = "button";
  print.id = "print";
  print.textContent = t("Print");
  print.addEventListener("click", () => window.print());
  container.append(save, print);
}
