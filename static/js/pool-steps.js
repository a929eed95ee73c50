// Max pooling of its own input, step by step (the slides' 4x4 example preset): POST /api/pool
// gives each window's place and maximum; the page lights the window and writes max(...) = m.
import { t as tr } from "./i18n.js";
import { sendJSON } from "./api.js";
import { editableGrid, numberGrid } from "./render.js";
import { $ } from "./dom.js";
import { short } from "./format.js";

const S = { example: null, input: null, pool: null, pos: -1 };

async function compute() {
  try {
    S.pool = await sendJSON("POST", "/api/pool", { input: S.input, size: S.example.size, stride: S.example.stride });
    $("pool-error").textContent = "";
  } catch (err) {
    S.pool = null;
    $("pool-error").textContent = err.message;
  }
  S.pos = -1;
  render();
}

function render() {
  const step = S.pool && S.pool.steps[S.pos];
  const size = S.example.size, width = S.input[0].length;
  if (!step) editableGrid($("pool-input"), S.input, compute);
  else numberGrid($("pool-input"), S.input, Infinity, (i) => {
    const r = Math.floor(i / width), c = i % width;
    return r >= step.top && r < step.top + size && c >= step.left && c < step.left + size ? "window" : "";
  });
  if (S.pool) numberGrid($("pool-output"), S.pool.output, S.pos, (i) => (i === S.pos ? "current" : ""));
  if (!step) {
    $("pool-arithmetic").textContent = tr("Press STEP to move the 2×2 window over the input.");
    return;
  }
  const window = S.input.slice(step.top, step.top + size).flatMap((row) => row.slice(step.left, step.left + size));
  $("pool-arithmetic").textContent = `max(${window.map(short).join(", ")}) = ${short(step.max)}`;
}

function step() {
  if (!S.pool) return;
  S.pos = S.pos >= S.pool.steps.length - 1 ? -1 : S.pos + 1;
  render();
}

export async function setPoolExample(example) {
  S.example = example;
  S.input = structuredClone(example.input);
  await compute();
}

$("pool-step").addEventListener("click", step);
$("pool-reset").addEventListener("click", () => { S.pos = -1; render(); });
$("pool-slides").addEventListener("click", () => setPoolExample(S.example));
