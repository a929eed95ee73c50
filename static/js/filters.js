// /filters: six tabs. Convolution step by step (conv-steps.js, with max pooling of its own input:
// pool-steps.js, and a colour convolution: colour-steps.js), inside the network
// (filters-network.js), learned filters (filters-learned.js), the kernel table (here), a photo
// network (filters-photo.js) and why CNNs, in numbers (why-cnns.js).
import { getJSON, modelOption, pageConfig, postForm } from "./api.js";
import { loadExample, resetConv, setExamples, stepConv } from "./conv-steps.js";
import { editableGrid, numberGrid, paintImage, readsGrey } from "./render.js";
import { inspect, loadSamples, padBlob, useState } from "./filters-network.js";
import { loadFilters } from "./filters-learned.js";
import { showPhotoTab } from "./filters-photo.js";
import { setPoolExample } from "./pool-steps.js";
import { setColourExample } from "./colour-steps.js";
import { showWhy } from "./why-cnns.js";
import { isShortcut } from "./keys.js";
import { t } from "./i18n.js";
import { $ } from "./dom.js";
import { at, readURL, writeURL } from "./url-state.js";

const config = pageConfig();
const S = { tab: "conv", model: config.defaultModel, lastImage: null, net: null, kernelInfo: null, ready: false };
const URL_STATE = [at("tab", (s) => s, "tab"), at("model", (s) => s, "model")];
readURL(URL_STATE, S);

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
  writeURL(URL_STATE, S);
  if (!S.ready) return;  // a tab clicked before the page's data came: init() shows it then
  if (tab === "filters") loadFilters(S);
  if (tab === "kernels") applyKernels();
  if (tab === "photo") showPhotoTab(S.kernelInfo.examples.slides_5x5.input);
  if (tab === "why") showWhy();
}
document.querySelectorAll("[data-tab]").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));

// --- convolution step by step ----------------------------------------------------------------

// --- kernel table ------------------------------------------------------------------------------

const customKernel = [[0, 0, 0], [0, 1, 0], [0, 0, 0]];
editableGrid($("custom-kernel"), customKernel, () => {});

async function kernelSource() {
  const file = $("kernel-upload").files[0];
  if (file) return file;
  if (S.lastImage) return S.lastImage;
  return padBlob();
}

async function applyKernels() {
  if (!S.ready) return;
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
    caption.textContent = t(name.replace(/_/g, " "));  // the kernel's name in this page's language
    card.append(caption);
    if (!ok) { card.append(body.message); return card; }
    const table = document.createElement("table");
    table.className = "grid kernel small";
    numberGrid(table, body.kernel);
    const after = imageCanvas(body.after, `The image after the ${caption.textContent} kernel`);
    card.append(table, after);
    return card;
  }));
  const read = cards.find(([, , ok]) => ok);
  if (!read) return;
  const original = document.createElement("figure");
  original.className = "kernel-card";
  original.innerHTML = "<figcaption>before</figcaption>";
  original.append(imageCanvas(read[1].before, "The image before"));
  $("kernel-table").prepend(original);
}

function imageCanvas(value, label) {
  const canvas = document.createElement("canvas");
  paintImage(canvas, value);
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label);
  return canvas;
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
  useState(S);
  for (const m of S.models) $("net-model").append(modelOption(m, m.id === S.model));
  $("net-model").addEventListener("change", async (e) => {
    S.model = e.target.value;
    showTab(S.tab);
    await loadSamples();
    if (S.lastImage) inspect(S.lastImage);
  });
  await loadExample("slides_5x5");
  await Promise.all([setPoolExample(S.kernelInfo.examples.slides_pool_4x4), setColourExample(S.kernelInfo.examples.colour_3x3x3)]);
  await loadSamples();
  S.ready = true;
  showTab(S.tab);
  const first = document.querySelector("#samples canvas");
  if (first) first.click();
}
init();
