// A colour convolution as a conv layer computes one filter: a 3x3x3 kernel (one 3x3 per colour
// channel) over a 3-channel image, the 27 products added up with the bias. POST
// /api/convolve/colour gives every position's products per channel; the page writes them out.
import { t as tr } from "./i18n.js";
import { sendJSON } from "./api.js";
import { editableGrid, numberGrid } from "./render.js";
import { $ } from "./dom.js";
import { short, term } from "./format.js";

const NAMES = ["red", "green", "blue"];
const S = { input: null, kernel: null, bias: 0, conv: null, pos: -1 };

async function compute() {
  S.bias = Number($("colour-bias").value) || 0;
  try {
    S.conv = await sendJSON("POST", "/api/convolve/colour", { input: S.input, kernel: S.kernel, bias: S.bias });
    $("colour-error").textContent = "";
  } catch (err) {
    S.conv = null;
    $("colour-error").textContent = err.message;
  }
  S.pos = -1;
  $("colour-output").dataset.bias = String(S.bias);  // which bias the output was computed with
  render();
}

function render() {
  const step = S.conv && S.conv.steps[S.pos];
  const k = S.kernel[0].length, width = S.input[0][0].length;
  S.input.forEach((plane, c) => {
    editableGrid($(`colour-kernel-${c}`), S.kernel[c], compute);
    if (!step) editableGrid($(`colour-input-${c}`), plane, compute);
    else numberGrid($(`colour-input-${c}`), plane, Infinity, (i) => {
      const r = Math.floor(i / width), col = i % width;
      return r >= step.top && r < step.top + k && col >= step.left && col < step.left + k ? "window" : "";
    });
  });
  if (S.conv) numberGrid($("colour-output"), S.conv.output, S.pos, (i) => (i === S.pos ? "current" : ""));
  const list = $("colour-arithmetic");
  if (!step) {
    const li = document.createElement("li");
    li.textContent = tr("Press STEP to lay the 3×3×3 kernel on the image.");
    list.replaceChildren(li);
    return;
  }
  const lines = step.channels.map((ch, c) => {
    const terms = ch.products.flat().map((p, i) => {
      const r = Math.floor(i / k), col = i % k;
      return `${term(S.input[c][step.top + r][step.left + col])}×${term(S.kernel[c][r][col])}`;
    });
    return `${tr(`${NAMES[c]} channel`)}: ${terms.join(" + ")} = ${short(ch.sum)}`;
  });
  const total = `${step.channels.map((ch) => term(ch.sum)).join(" + ")} + ${term(step.bias)} ${tr("(bias)")} = ${short(step.sum)}`;
  list.replaceChildren(...[...lines, total].map((text, i) => {
    const li = document.createElement("li");
    li.textContent = text;
    if (i === lines.length) li.className = "total";
    return li;
  }));
}

function step() {
  if (!S.conv) return;
  S.pos = S.pos >= S.conv.steps.length - 1 ? -1 : S.pos + 1;
  render();
}

export async function setColourExample(example) {
  S.input = structuredClone(example.input);
  S.kernel = structuredClone(example.kernel);
  $("colour-bias").value = String(example.bias);
  await compute();
}

$("colour-step").addEventListener("click", step);
$("colour-reset").addEventListener("click", () => { S.pos = -1; render(); });
$("colour-bias").addEventListener("change", compute);
