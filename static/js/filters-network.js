// /filters, "inside the network": every layer's output for one input (POST /api/activations),
// each feature map enlarged, and one cell worked out by the server (POST /api/activations/cell).
import { getJSON, postForm } from "./api.js";
import { $ } from "./dom.js";
import { short as fmt, term } from "./format.js";
import { t } from "./i18n.js";
import { DrawingPad } from "./pad.js";
import { decodeImage, paintDiverging, paintGrey } from "./render.js";

let S;  // the page's state (filters.js)

// A layer's name as the server gives it ("Conv 16 3×3", "Max pool 2×2", "Dense 64") in this page's language.
export function layerName(label) {
  const m = /^(Max pool|Average pool|Dense|Dropout) (.+)$/.exec(label);
  return m ? t(`${m[1]} {k}`, undefined, { k: m[2] }) : label;
}
export function useState(state) { S = state; pad.resize(); }

export async function inspect(blob) {
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
  const title = document.createElement("h3"), size = document.createElement("small");
  size.textContent = "28×28×1";
  title.append(`${t("Input")} `, size);
  input.append(title);
  const inputCanvas = document.createElement("canvas");
  inputCanvas.className = "pixelated map";
  paintGrey(inputCanvas, body.input);
  input.append(inputCanvas);
  list.append(input);
  for (const layer of body.layers) {
    const li = document.createElement("li");
    const h3 = document.createElement("h3");
    const shape = layer.shape.length === 3 ? `${layer.shape[1]}×${layer.shape[2]}×${layer.shape[0]}` : `${layer.shape[0]}`;
    h3.textContent = `${layer.index + 1}. ${layerName(layer.label)} `;
    const small = document.createElement("small");
    small.textContent = `→ ${shape}` + (layer.maps ? ` · ${t("scale")} ±${fmt(layer.maps.scale)}` : "");
    h3.append(small);
    li.append(h3);
    if (layer.maps && ["Conv2d", "MaxPool2d", "AvgPool2d"].includes(layer.type)) li.append(mapGrid(layer));
    else if (layer.probabilities) li.append(valueStrip(layer.probabilities, body.labels, true));
    else if (layer.values && layer.values.length <= 128) li.append(valueStrip(layer.values));
    list.append(li);
  }
}

function mapGrid(layer) {
  const maps = decodeImage(layer.maps);
  const grid = document.createElement("div");
  grid.className = "maps";
  for (let c = 0; c < maps.channels; c++) {
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated map";
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "button");
    canvas.setAttribute("aria-label", `Feature map ${c + 1} of ${layer.label}`);
    paintDiverging(canvas, maps, c);
    const open = () => openMap(layer, c, maps);
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

async function openMap(layer, channel, maps) {
  const { height, width } = maps, { scale } = layer.maps;
  const canvas = $("map-big");
  const ctx = paintDiverging(canvas, maps, channel);
  $("map-title").textContent = `${layer.label}, map ${channel + 1}: ${height}×${width}, values from −${fmt(scale)} to +${fmt(scale)}`;
  $("map-explain").textContent = t("Click a cell to see where it comes from.");
  canvas.onclick = async (e) => {
    const r = canvas.getBoundingClientRect();
    const col = Math.floor(((e.clientX - r.left) / r.width) * width), row = Math.floor(((e.clientY - r.top) / r.height) * height);
    paintDiverging(canvas, maps, channel);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 0.3;
    ctx.strokeRect(col, row, 1, 1);
    const value = ((maps.plane(channel)[row * width + col] - 128) / 127.5) * scale;
    $("map-explain").replaceChildren(await explainCell(layer, channel, row, col, value));
  };
  $("map-dialog").showModal();
}

// The server works the cell out (POST /api/activations/cell) from the same input: the window it
// covers, the filter, each product and the sum; the page only writes it down.
async function explainCell(layer, channel, row, col, value) {
  const box = document.createElement("div");
  let cell;
  try {
    cell = await postForm("/api/activations/cell", { image: S.lastImage, model: S.model, layer: layer.index, channel, row, col });
  } catch (err) {
    box.textContent = err.message;
    return box;
  }
  const [k, kw] = cell.kernel;
  if (cell.window.length > 1) {
    box.textContent = t("Cell ({r}, {c}) = {sum}: filter {f} looks at the same {k}×{kw} window of all {n} maps of the layer before, multiplies each by its own slice of the filter and adds them up, plus its bias.",
      undefined, { r: row + 1, c: col + 1, sum: fmt(cell.sum), f: channel + 1, k, kw, n: cell.window.length });
    return box;
  }
  const terms = cell.window[0].flatMap((line, i) => line.map((pixel, j) => `${term(pixel)}×${term(cell.weights[0][i][j])}`));
  const bias = cell.bias ? ` + ${t("bias")} ${term(cell.bias)}` : "";
  box.textContent = t("Cell ({r}, {c}): the {k}×{k} input patch at rows {r0}–{r1}, columns {c0}–{c1}, times filter {f}: {terms} = {sum} (the map shows {value}, rounded to its colour scale).",
    undefined, { r: row + 1, c: col + 1, k, r0: cell.top + 1, r1: cell.top + k, c0: cell.left + 1, c1: cell.left + kw,
      f: channel + 1, terms: terms.join(" + ") + bias, sum: fmt(cell.sum), value: fmt(value) });
  return box;
}

// the small drawing pad (the same pad as /draw): each finished stroke is looked inside at once
const pad = new DrawingPad($("mini-pad"), { onChange: (ended) => { if (ended && !pad.empty) pad.frameBlob().then(inspect); } });
export const padBlob = () => pad.frameBlob();

$("mini-clear").addEventListener("click", () => pad.clear());
$("net-upload").addEventListener("change", (e) => e.target.files[0] && inspect(e.target.files[0]));

export async function loadSamples() {
  const dataset = S.models.find((m) => m.id === S.model)?.task === "fashion" ? "fashion" : "mnist";
  const { images, labels } = await getJSON(`/api/samples?dataset=${dataset}&n=8`);
  $("samples").replaceChildren(...images.map((image, i) => {
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated sample";
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "button");
    canvas.setAttribute("aria-label", `Test image of ${labels[i]}`);
    paintGrey(canvas, image);
    const use = () => canvas.toBlob(inspect, "image/png");
    canvas.addEventListener("click", use);
    canvas.addEventListener("keydown", (e) => { if (e.key === "Enter") use(); });
    return canvas;
  }));
}

