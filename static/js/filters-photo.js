// /filters, "a photo network": the ImageNet network's stem filters as colour swatches, one photo's
// most active feature maps at each stage (POST /api/photonet/stages), any channel on request, and
// depthwise then pointwise convolution worked out on the slides' 5x5 input (POST /api/convolve).
import { postForm, sendJSON } from "./api.js";
import { $ } from "./dom.js";
import { count, short } from "./format.js";
import { t } from "./i18n.js";
import { decodeImage, numberGrid, paintColour, paintDiverging } from "./render.js";

const P = { blob: null, loaded: false };
const partName = (p) => (p.name.startsWith("stage") ? t("stage {n}", undefined, { n: p.name.split(" ")[1] }) : t(p.name));

export function showPhotoTab(slidesInput) {
  if (P.loaded) return;
  P.loaded = true;
  explainDepthwise(slidesInput);
}

$("photo-upload").addEventListener("change", (e) => {
  if (e.target.files[0]) { P.blob = e.target.files[0]; readPhoto(); }
  e.target.value = "";
});

async function readPhoto(pick = null) {
  $("photo-status").textContent = "";
  try {
    const fields = { image: P.blob, ...(pick ? { part: String(pick[0]), channel: String(pick[1]) } : {}) };
    const body = await postForm("/api/photonet/stages", fields);
    $("photo-seen").hidden = false;
    paintColour($("photo-seen"), body.input);
    stemFilters(body.stem_filters);
    stages(body.parts);
    if (body.picked) showPicked(body.picked);
  } catch (err) {
    $("photo-status").textContent = err.message;
  }
}

// 32 filters (3, 3, 3): each filter's weights scaled to 0..255 over that filter, read as RGB.
function stemFilters(filters) {
  $("stem-filters").replaceChildren(...filters.map((f, i) => {
    const flat = f.flat(2), lo = Math.min(...flat), hi = Math.max(...flat);
    const chw = f.map((plane) => plane.map((row) => row.map((v) => (v - lo) / (hi - lo || 1))));
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated swatch";
    canvas.setAttribute("aria-label", t("filter {n}", undefined, { n: i + 1 }));
    paintColour(canvas, chw);
    return canvas;
  }));
}

function stages(parts) {
  const chosen = $("pick-part").value;  // a channel asked for keeps its part chosen
  $("pick-part").replaceChildren(...parts.map((p) => new Option(partName(p), String(p.part))));
  if (chosen) $("pick-part").value = chosen;
  $("photo-stages").replaceChildren(...parts.map((p) => {
    const li = document.createElement("li");
    const h3 = document.createElement("h3");
    h3.textContent = `${partName(p)} `;
    const small = document.createElement("small");
    const [c, h, w] = p.shape;
    small.textContent = `→ ${h}×${w}×${c} · ${t("{n} weights", undefined, { n: count(p.weights) })} · `
      + t("the {k} most active of {c} channels", undefined, { k: p.channels.length, c }) + ` · ±${short(p.maps.scale)}`;
    h3.append(small);
    const grid = document.createElement("div");
    grid.className = "maps";
    const maps = decodeImage(p.maps);
    p.channels.forEach((channel, i) => {
      const canvas = document.createElement("canvas");
      canvas.className = "pixelated map";
      canvas.title = t("channel {n}", undefined, { n: channel });
      paintDiverging(canvas, maps, i);
      grid.append(canvas);
    });
    li.append(h3, grid);
    return li;
  }));
}

function showPicked(picked) {
  const canvas = $("picked");
  canvas.hidden = false;
  paintDiverging(canvas, decodeImage(picked.maps));
  canvas.setAttribute("aria-label", `${partName(picked)}, ${t("channel {n}", undefined, { n: picked.channel })}`);
}

$("pick-show").addEventListener("click", () => {
  if (!P.blob) { $("photo-status").textContent = t("Choose a photo first."); return; }
  readPhoto([Number($("pick-part").value), Number($("pick-channel").value)]);
});

// Depthwise: each channel with its own kernel; pointwise: 1x1 weights mixing the two at each pixel.
async function explainDepthwise(a) {
  const b = a.map((row, i) => row.map((_, j) => a[j][i]));  // the same numbers, transposed: a second channel
  const [ka, kb] = [[[0, 1, 0], [1, -4, 1], [0, 1, 0]], [[1, 0, -1], [1, 0, -1], [1, 0, -1]]];
  const [oa, ob] = await Promise.all([ka, kb].map((kernel, i) =>
    sendJSON("POST", "/api/convolve", { input: i ? b : a, kernel, stride: 1, padding: "valid" })));
  const [wa, wb] = [0.5, -1];
  const mixed = oa.output.map((row, r) => row.map((v, c) => wa * v + wb * ob.output[r][c]));
  numberGrid($("dw-a"), a);
  numberGrid($("dw-b"), b);
  numberGrid($("dw-a-out"), oa.output);
  numberGrid($("dw-b-out"), ob.output);
  numberGrid($("pw-out"), mixed);
  $("pw-caption").textContent = t("pointwise: {wa} × A + ({wb}) × B", undefined, { wa, wb });
  const s = oa.steps[0];
  $("dw-arithmetic").textContent = `${t("top left of A:")} ${s.products.flat().map(short).join(" + ")} = ${short(s.sum)}; `
    + `${t("mixed:")} ${wa} × ${short(oa.output[0][0])} + (${wb}) × ${short(ob.output[0][0])} = ${short(mixed[0][0])}`;
  const [k, cin, cout] = [3, 96, 24];  // stage 2's first block narrows 96 channels to 24
  $("dw-weights").textContent = t("Why: a full 3×3 convolution from {cin} to {cout} channels has {full} weights; depthwise ({dw}) plus pointwise ({pw}) has {both}.",
    undefined, { cin, cout, full: count(k * k * cin * cout), dw: count(k * k * cin), pw: count(cin * cout), both: count(k * k * cin + cin * cout) });
}
