// Convolution, step by step: POST /api/convolve and /api/pool give every position's window,
// products and sum; this module slides the kernel over the input one position at a time.
import { t } from "./i18n.js";
import { sendJSON } from "./api.js";
import { editableGrid, numberGrid } from "./render.js";
import { $ } from "./dom.js";
import { short as fmt, term } from "./format.js";

const S = { input: null, kernel: null, conv: null, pool: null, pos: -1, timer: null, examples: {} };

async function compute() {
  stopConv();
  const padding = $("padding").value;
  try {
    S.conv = await sendJSON("POST", "/api/convolve", {
      input: S.input, kernel: S.kernel, stride: Number($("stride").value),
      padding: ["valid", "same"].includes(padding) ? padding : Number(padding) });
    S.pool = await sendJSON("POST", "/api/pool", { input: S.conv.output, size: Number($("pool-size").value),
                                                   stride: Number($("pool-stride").value) }).catch((e) => ({ error: e.message }));
    $("conv-error").textContent = "";
  } catch (err) {
    S.conv = null;
    $("conv-error").textContent = err.message;
  }
  S.pos = -1;
  renderConv();
}

function renderConv() {
  editableGrid($("kernel-grid"), S.kernel, compute);
  if (!S.conv) { editableGrid($("input-grid"), S.input, compute); return; }
  const [top, , left] = S.conv.padding;
  const padded = S.conv.padded, width = padded[0].length;
  const step = S.conv.steps[S.pos];
  const kh = S.kernel.length, kw = S.kernel[0].length;
  const inWindow = (i) => {
    if (!step) return false;
    const r = Math.floor(i / width), c = i % width;
    return r >= step.top && r < step.top + kh && c >= step.left && c < step.left + kw;
  };
  if (S.pos < 0) editableGrid($("input-grid"), S.input, compute);
  else numberGrid($("input-grid"), padded, Infinity, (i) => {
    const r = Math.floor(i / width), c = i % width;
    const pad = r < top || c < left || r >= top + S.input.length || c >= left + S.input[0].length;
    return `${inWindow(i) ? "window" : ""} ${pad ? "pad" : ""}`;
  });
  numberGrid($("output-grid"), S.conv.output, S.pos, (i) => (i === S.pos ? "current" : ""));
  if (S.pool && S.pool.output) numberGrid($("pool-grid"), S.pool.output, S.pos >= S.conv.steps.length - 1 ? Infinity : -1);
  $("pad-note").textContent = S.conv.padding.some(Boolean) ? t("(zeros added around it: padding)") : "";
  $("arithmetic").textContent = step
    ? step.products.flat().map((p, i) => `${term(padded[step.top + Math.floor(i / kw)][step.left + (i % kw)])}×${term(S.kernel[Math.floor(i / kw)][i % kw])}`).join(" + ") + ` = ${fmt(step.sum)}`
    : t("Press STEP to slide the kernel over the input.");
  const f = S.conv.formula;
  $("conv-formula").textContent = `${t("Output size")} = ⌊(n + padding − k) / stride⌋ + 1 = ⌊(${f.n[0]} + ${f.padding[0]} − ${f.k[0]}) / ${f.stride}⌋ + 1 = ${f.output[0]}` +
    (f.n[0] !== f.n[1] || f.k[0] !== f.k[1] ? ` (rows) × ${f.output[1]} (columns)` : "");
  $("pool-formula").textContent = S.pool && S.pool.formula
    ? `${t("Max pool {k}×{k}, stride {s}", undefined, { k: S.pool.formula.k[0], s: S.pool.formula.stride })}: ⌊(${S.pool.formula.n[0]} − ${S.pool.formula.k[0]}) / ${S.pool.formula.stride}⌋ + 1 = ${S.pool.formula.output[0]}`
    : S.pool && S.pool.error ? `${t("Max pool")}: ${S.pool.error}` : "";
}

export function stepConv() {
  if (!S.conv) return;
  if (S.pos >= S.conv.steps.length - 1) return stopConv();
  S.pos += 1;
  renderConv();
}
function stopConv() { clearInterval(S.timer); S.timer = null; $("conv-play").textContent = "PLAY"; }
function playConv() {
  if (S.timer) return stopConv();
  if (S.conv && S.pos >= S.conv.steps.length - 1) S.pos = -1;
  $("conv-play").textContent = "PAUSE";
  S.timer = setInterval(stepConv, 700);
}
export function resetConv() { stopConv(); S.pos = -1; renderConv(); }

export async function loadExample(name) {
  const { examples } = S;
  S.input = structuredClone(examples[name].input);
  S.kernel = structuredClone(examples[name].kernel);
  await compute();
}
document.querySelectorAll("[data-example]").forEach((b) => b.addEventListener("click", () => loadExample(b.dataset.example)));
for (const id of ["padding", "stride", "pool-size", "pool-stride"]) $(id).addEventListener("change", compute);
$("conv-step").addEventListener("click", stepConv);
$("conv-play").addEventListener("click", playConv);
$("conv-reset").addEventListener("click", resetConv);

export function setExamples(examples) {
  S.examples = examples;
}
