// /filters, "learned filters": each conv layer's weights as small images (click one for its
// numbers) and, for a model trained here, the first layer's filters over training time.
import { getJSON } from "./api.js";
import { $ } from "./dom.js";
import { short as fmt } from "./format.js";
import { t } from "./i18n.js";
import { layerName } from "./filters-network.js";
import { decodeImage, numberGrid, paintDiverging, paintGrey } from "./render.js";

let S;  // the page's state (filters.js)

export async function loadFilters(state) {
  S = state;
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
  paintGrey($("history-image"), history.image);
  showSnapshot();
}

function showSnapshot() {
  const snap = S.history.snapshots[Number($("history-step").value)];
  $("history-when").textContent = t("epoch {e} · step {s}", undefined, { e: snap.epoch, s: snap.step });
  const shape = [snap.weights.length, snap.weights[0].length, snap.weights[0][0].length, snap.weights[0][0][0].length];
  const layer = filterLayer({ label: t("First conv layer"), shape, weights: snap.weights, bias: null }, false, Math.min(shape[0], 32));
  const image = decodeImage(snap.maps);
  const maps = document.createElement("div");
  maps.className = "history-maps";
  for (let i = 0; i < image.channels; i++) {
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated";
    paintDiverging(canvas, image, i);
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
  h3.textContent = `${layerName(layer.label)}: ${t("{out} filters of {kh}×{kw}×{inn}", undefined, { out, kh, kw, inn })} ` +
    t(first ? "(click one to read its weights)" : "(one row per filter, one image per input channel)");
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
      paintDiverging(canvas, { width: kw, height: kh, data: bytes });
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

