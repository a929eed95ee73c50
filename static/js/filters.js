// Inside the network: convolution step by step (POST /api/convolve, /api/pool), every layer's
// output for one input (/api/activations), learned filters, and the kernel table.
import { getJSON, modelOption, pageConfig, postForm } from "./api.js";
import { loadExample, resetConv, setExamples, stepConv } from "./conv-steps.js";
import { editableGrid, numberGrid, paintDiverging, paintGrey, readsGrey } from "./render.js";
import { isShortcut } from "./keys.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const config = pageConfig();
const params = new URLSearchParams(location.search);
const S = { tab: params.get("tab") || "conv", model: params.get("model") || config.defaultModel,
            lastImage: null, net: null, kernelInfo: null };
const fmt = (v) => String(Number(v.toFixed(3)));
const term = (v) => (v < 0 ? `(${fmt(v)})` : fmt(v));  // the slides write 3×(−1)

document.addEventListener("keydown", (e) => {
  if (!isShortcut(e) || S.tab !== "conv") return;
  if (e.key === " ") { e.preventDefault(); stepConv(); }
  if (e.key === "r" || e.key === "R") resetConv();
});

// --- tabs --------------------------------------------------------------------------------------

function showTab(tab) {
  S.tab = tab;
  document.querySelectorAll("[data-tab]").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === tab)));
  document.querySelectorAll(".tab-panel").forEach((p) => { p.hidden = p.id !== `tab-${tab}`; });
  const q = new URLSearchParams(location.search);
  q.set("tab", tab);
  q.set("model", S.model);
  history.replaceState(null, "", `?${q}`);
  if (tab === "filters") loadFilters();
  if (tab === "kernels") applyKernels();
}
document.querySelectorAll("[data-tab]").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));

// --- convolution step by step ----------------------------------------------------------------

// --- inside the network ------------------------------------------------------------------------

const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

async function inspect(blob) {
  S.lastImage = blob;
  let body;
  try {
    body = await postForm("/api/activations", { image: blob, model: S.model });
  } catch (err) {
    $("net-prediction").textContent = err.message;
    return;
  }
  S.net = body;
  renderLayers(body);
}

function renderLayers(body) {
  $("net-prediction").textContent = t("The network reads: {p}", undefined, { p: body.prediction });
  const list = $("layer-list");
  list.replaceChildren();
  const input = document.createElement("li");
  input.innerHTML = "<h3>Input <small>28×28×1</small></h3>";
  const inputCanvas = document.createElement("canvas");
  inputCanvas.className = "pixelated map";
  paintGrey(inputCanvas, { width: 28, height: 28, base64: body.input });
  input.append(inputCanvas);
  list.append(input);
  for (const layer of body.layers) {
    const li = document.createElement("li");
    const h3 = document.createElement("h3");
    const shape = layer.shape.length === 3 ? `${layer.shape[1]}×${layer.shape[2]}×${layer.shape[0]}` : `${layer.shape[0]}`;
    h3.textContent = `${layer.index + 1}. ${layer.label} `;
    const small = document.createElement("small");
    small.textContent = `→ ${shape}` + (layer.maps ? ` · scale ±${fmt(layer.maps.scale)}` : "");
    h3.append(small);
    li.append(h3);
    if (layer.maps && ["Conv2d", "MaxPool2d", "AvgPool2d"].includes(layer.type)) li.append(mapGrid(layer));
    else if (layer.probabilities) li.append(valueStrip(layer.probabilities, body.labels, true));
    else if (layer.values && layer.values.length <= 128) li.append(valueStrip(layer.values));
    list.append(li);
  }
}

function mapGrid(layer) {
  const { channels, height, width, base64 } = layer.maps;
  const bytes = decode(base64);
  const grid = document.createElement("div");
  grid.className = "maps";
  for (let c = 0; c < channels; c++) {
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated map";
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "button");
    canvas.setAttribute("aria-label", `Feature map ${c + 1} of ${layer.label}`);
    paintDiverging(canvas, bytes, width, height, c * width * height);
    const open = () => openMap(layer, c, bytes);
    canvas.addEventListener("click", open);
    canvas.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    grid.append(canvas);
  }
  return grid;
}

function valueStrip(values, labels = null, probabilities = false) {
  const strip = document.createElement("div");
  strip.className = "values";
  const max = Math.max(...values.map(Math.abs), 1e-9);
  values.forEach((v, i) => {
    const cell = document.createElement("span");
    cell.style.setProperty("--v", String(v / max));
    cell.className = v >= 0 ? "pos" : "neg";
    cell.title = `${labels ? labels[i] : i}: ${fmt(v)}`;
    if (labels) cell.textContent = `${labels[i]} ${probabilities ? Math.round(v * 100) + "%" : ""}`;
    strip.append(cell);
  });
  return strip;
}

async function openMap(layer, channel, bytes) {
  const { height, width, scale } = layer.maps;
  const canvas = $("map-big");
  const ctx = paintDiverging(canvas, bytes, width, height, channel * width * height);
  $("map-title").textContent = `${layer.label}, map ${channel + 1}: ${height}×${width}, values from −${fmt(scale)} to +${fmt(scale)}`;
  $("map-explain").textContent = t("Click a cell to see where it comes from.");
  canvas.onclick = async (e) => {
    const r = canvas.getBoundingClientRect();
    const col = Math.floor(((e.clientX - r.left) / r.width) * width), row = Math.floor(((e.clientY - r.top) / r.height) * height);
    paintDiverging(canvas, bytes, width, height, channel * width * height);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 0.3;
    ctx.strokeRect(col, row, 1, 1);
    const value = ((bytes[channel * width * height + row * width + col] - 128) / 127.5) * scale;
    $("map-explain").replaceChildren(await explainCell(layer, channel, row, col, value));
  };
  $("map-dialog").showModal();
}

// For the first conv layer: the input patch times the filter, written out; deeper: where it looks.
async function explainCell(layer, channel, row, col, value) {
  const box = document.createElement("div");
  const first = S.net.layers.find((l) => l.type === "Conv2d");
  if (layer.index !== first.index) {
    box.textContent = `Cell (${row + 1}, ${col + 1}) = ${fmt(value)}. It combines every map of the layer before, ` +
      "each through its own 3×3 slice of this filter (see Learned filters).";
    return box;
  }
  const filters = await getJSON(`/api/models/${S.model}/filters`);
  const f = filters.layers[0];
  const k = f.shape[2], pad = Math.floor((layer.shape[1] - 28 + k - 1) / 2);
  const input = decode(S.net.input);
  const terms = [];
  let sum = f.bias ? f.bias[channel] : 0;
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
    const y = row + i - pad, x = col + j - pad;
    const pixel = y >= 0 && y < 28 && x >= 0 && x < 28 ? input[y * 28 + x] / 255 : 0;
    const weight = f.weights[channel][0][i][j];
    sum += pixel * weight;
    terms.push(`${term(pixel)}×${term(weight)}`);
  }
  const bias = f.bias ? ` + ${t("bias")} ${term(f.bias[channel])}` : "";
  box.textContent = t("Cell ({r}, {c}): the {k}×{k} input patch at rows {r0}–{r1}, columns {c0}–{c1}, times filter {f}: {terms} = {sum} (the map shows {value}, rounded to its colour scale).",
    undefined, { r: row + 1, c: col + 1, k, r0: row + 1 - pad, r1: row + k - pad, c0: col + 1 - pad, c1: col + k - pad,
      f: channel + 1, terms: terms.join(" + ") + bias, sum: fmt(sum), value: fmt(value) });
  return box;
}

// the small drawing pad
const pad = $("mini-pad");
const padCtx = pad.getContext("2d");
function clearPad() { padCtx.fillStyle = "#fff"; padCtx.fillRect(0, 0, pad.width, pad.height); }
clearPad();
let drawing = false, last = null;
pad.addEventListener("pointerdown", (e) => { drawing = true; last = [e.offsetX, e.offsetY]; pad.setPointerCapture(e.pointerId); });
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  padCtx.strokeStyle = "#000";
  padCtx.lineWidth = 16;
  padCtx.lineCap = "round";
  padCtx.beginPath();
  padCtx.moveTo(...last);
  padCtx.lineTo(e.offsetX, e.offsetY);
  padCtx.stroke();
  last = [e.offsetX, e.offsetY];
});
pad.addEventListener("pointerup", () => { drawing = false; pad.toBlob(inspect, "image/png"); });
$("mini-clear").addEventListener("click", clearPad);
$("net-upload").addEventListener("change", (e) => e.target.files[0] && inspect(e.target.files[0]));

async function loadSamples() {
  const dataset = S.models.find((m) => m.id === S.model)?.task === "fashion" ? "fashion" : "mnist";
  const { images, labels } = await getJSON(`/api/samples?dataset=${dataset}&n=8`);
  $("samples").replaceChildren(...images.map((b64, i) => {
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated sample";
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "button");
    canvas.setAttribute("aria-label", `Test image of ${labels[i]}`);
    paintGrey(canvas, { width: 28, height: 28, base64: b64 });
    const use = () => canvas.toBlob(inspect, "image/png");
    canvas.addEventListener("click", use);
    canvas.addEventListener("keydown", (e) => { if (e.key === "Enter") use(); });
    return canvas;
  }));
}

// --- learned filters ---------------------------------------------------------------------------

async function loadFilters() {
  const box = $("filter-layers");
  let history = false;
  try {
    const found = await getJSON(`/api/models/${S.model}/filters`);
    box.replaceChildren(...found.layers.map((layer, n) => filterLayer(layer, n === 0)));
    history = found.history;
  } catch (err) {
    box.textContent = err.message;
  }
  loadHistory(history);
}

// --- filters over training time: a model trained here kept its first conv layer's filters (and
// one test image's feature maps) every quarter epoch; a scrubber plays them back ----------------

async function loadHistory(kept) {
  const panel = $("filter-history");
  clearInterval(S.historyTimer);
  panel.hidden = true;  // shipped models, or no conv layer: nothing to play back
  if (!kept) return;
  const history = await getJSON(`/api/models/${S.model}/history`);
  S.history = history;
  panel.hidden = false;
  const slider = $("history-step");
  slider.max = history.snapshots.length - 1;
  slider.value = slider.max;
  const [h, w] = history.image_shape.slice(-2);
  paintGrey($("history-image"), { width: w, height: h, base64: history.image });
  showSnapshot();
}

function showSnapshot() {
  const snap = S.history.snapshots[Number($("history-step").value)];
  $("history-when").textContent = t("epoch {e} · step {s}", undefined, { e: snap.epoch, s: snap.step });
  const shape = [snap.weights.length, snap.weights[0].length, snap.weights[0][0].length, snap.weights[0][0][0].length];
  const layer = filterLayer({ label: t("First conv layer"), shape, weights: snap.weights, bias: null }, false, Math.min(shape[0], 32));
  const [c, mh, mw] = snap.map_shape;
  const bytes = Uint8Array.from(atob(snap.maps), (ch) => ch.charCodeAt(0));
  const maps = document.createElement("div");
  maps.className = "history-maps";
  for (let i = 0; i < c; i++) {
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated";
    paintDiverging(canvas, bytes, mw, mh, i * mw * mh);
    maps.append(canvas);
  }
  $("history-filters").replaceChildren(layer, maps);
}

$("history-step").addEventListener("input", () => showSnapshot());
$("history-play").addEventListener("click", () => {
  clearInterval(S.historyTimer);
  const slider = $("history-step");
  if (Number(slider.value) >= Number(slider.max)) slider.value = 0;
  S.historyTimer = setInterval(() => {
    if (Number(slider.value) >= Number(slider.max)) return clearInterval(S.historyTimer);
    slider.value = Number(slider.value) + 1;
    showSnapshot();
  }, 400);
});

function filterLayer(layer, first, rows = 8) {
  const [out, inn, kh, kw] = layer.shape;
  const section = document.createElement("section");
  const h3 = document.createElement("h3");
  h3.textContent = `${layer.label}: ${out} filters of ${kh}×${kw}×${inn}` +
    (first ? " (click one to read its weights)" : " (one row per filter, one image per input channel)");
  section.append(h3);
  const grid = document.createElement("div");
  grid.className = first ? "filters first" : "filters deep";
  const shown = first ? out : Math.min(out, rows);
  for (let o = 0; o < shown; o++) {
    const row = document.createElement("div");
    row.className = "filter-row";
    for (let i = 0; i < (first ? 1 : Math.min(inn, 16)); i++) {
      const w = layer.weights[o][i];
      const max = Math.max(...w.flat().map(Math.abs), 1e-9);
      const bytes = Uint8Array.from(w.flat(), (v) => Math.round(127.5 + (v / max) * 127.5));
      const canvas = document.createElement("canvas");
      canvas.className = "pixelated filter";
      paintDiverging(canvas, bytes, kw, kh);
      if (first) {
        canvas.tabIndex = 0;
        canvas.setAttribute("role", "button");
        canvas.setAttribute("aria-label", `Filter ${o + 1}`);
        const show = () => showWeights(section, o, w, layer.bias ? layer.bias[o] : null);
        canvas.addEventListener("click", show);
        canvas.addEventListener("keydown", (e) => { if (e.key === "Enter") show(); });
      }
      row.append(canvas);
    }
    grid.append(row);
  }
  section.append(grid);
  if (!first && out > shown) {
    const more = document.createElement("p");
    more.className = "hint";
    more.textContent = t("The first {shown} of {out} filters, first {k} of {inn} input channels.", undefined,
      { shown, out, k: Math.min(inn, 16), inn });
    section.append(more);
  }
  return section;
}

function showWeights(section, o, w, bias) {
  let table = section.querySelector("table.weights");
  if (!table) { table = document.createElement("table"); table.className = "grid weights"; section.append(table); }
  numberGrid(table, w);
  table.setAttribute("aria-label", `Filter ${o + 1} weights`);
  const caption = table.createCaption();
  caption.textContent = `Filter ${o + 1}` + (bias !== null ? `, bias ${fmt(bias)}` : "");
}

// --- kernel table ------------------------------------------------------------------------------

const customKernel = [[0, 0, 0], [0, 1, 0], [0, 0, 0]];
editableGrid($("custom-kernel"), customKernel, () => {});

async function kernelSource() {
  const file = $("kernel-upload").files[0];
  if (file) return file;
  if (S.lastImage) return S.lastImage;
  return new Promise((resolve) => pad.toBlob(resolve, "image/png"));
}

async function applyKernels() {
  const source = await kernelSource();
  const names = [...Object.keys(S.kernelInfo.kernels), "custom"];
  const cards = await Promise.all(names.map(async (name) => {
    const fields = { image: source, kernel: name === "custom" ? JSON.stringify(customKernel) : name, mode: $("kernel-mode").value };
    return postForm("/api/kernels/apply", fields).then((body) => [name, body, true], (err) => [name, { message: err.message }, false]);
  }));
  $("kernel-table").replaceChildren(...cards.map(([name, body, ok]) => {
    const card = document.createElement("figure");
    card.className = "kernel-card";
    const caption = document.createElement("figcaption");
    caption.textContent = name.replace(/_/g, " ");
    card.append(caption);
    if (!ok) { card.append(body.message); return card; }
    const table = document.createElement("table");
    table.className = "grid kernel small";
    numberGrid(table, body.kernel);
    const after = new Image();
    after.src = body.after;
    after.alt = `The image after the ${caption.textContent} kernel`;
    card.append(table, after);
    return card;
  }));
  const original = document.createElement("figure");
  original.className = "kernel-card";
  original.innerHTML = "<figcaption>before</figcaption>";
  const before = new Image();
  before.src = cards[0][1].before;
  before.alt = "The image before";
  original.append(before);
  $("kernel-table").prepend(original);
}
$("kernel-apply").addEventListener("click", applyKernels);
$("kernel-mode").addEventListener("change", applyKernels);
$("kernel-upload").addEventListener("change", applyKernels);

// --- start ---------------------------------------------------------------------------------------

async function init() {
  S.kernelInfo = await getJSON("/api/kernels");
  setExamples(S.kernelInfo.examples);
  const { models } = await getJSON("/api/models");
  S.models = models.filter(readsGrey);
  for (const m of S.models) $("net-model").append(modelOption(m, m.id === S.model));
  $("net-model").addEventListener("change", async (e) => {
    S.model = e.target.value;
    showTab(S.tab);
    await loadSamples();
    if (S.lastImage) inspect(S.lastImage);
  });
  await loadExample("slides_5x5");
  await loadSamples();
  showTab(S.tab);
  const first = document.querySelector("#samples canvas");
  if (first) first.click();
}
init();
