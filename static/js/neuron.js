// A neuron, and how it learns: one neuron's arithmetic (/api/neuron/forward), the activation
// functions and their slopes, MSE and cross-entropy, y = ax + b by trial, one training step of a
// 2-3-2 network with every number (/api/neuron/step), and batch arithmetic. The tab and the
// neuron's numbers live in the address (a lesson link reproduces them).
import { getJSON, sendJSON } from "./api.js";
import { t } from "./i18n.js";
import { isShortcut } from "./keys.js";
import { COLOURS, Frame, canvasFont } from "./plot.js";
import { fmt, term } from "./format.js";
import { $ } from "./dom.js";
import { at, numbers, readURL, writeURL } from "./url-state.js";
import { Trials, pairs, showPairs } from "./neuron-trials.js";
import { showBasics, showCosts } from "./neuron-basics.js";

const CURVE_COLOURS = [...COLOURS, "#56B4E9", "#D55E00"];
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 2]];
const LINE_POINTS = { x: [2, 4], y: [5, 9] };
const S = { tab: "neuron", example: null, curves: null, net: null, steps: 0, save: () => saveURL() };

// The address: the tab, the neuron (x1..x3, w1..w3, b) and its activation, the line's a and b.
// The neuron's rows are read once the example neuron (and the activations offered) have come.
const top = (s) => s;
const slider = (key, id) => ({ key, get: () => $(id).value, set: (_, v) => { $(id).value = v; } });
const URL_STATE = [
  at("tab", top, "tab", { parse: (v) => ([...document.querySelectorAll("[data-tab]")].some((b) => b.dataset.tab === v) ? v : null) }),
  { key: "neuron", afterExample: true, parse: parseNeuron,
    get: (s) => s.neuron && [...s.neuron.inputs, ...s.neuron.weights, s.neuron.bias].join(","),
    set: (s, v) => { Object.assign(s.neuron, { inputs: v.slice(0, 3), weights: v.slice(3, 6), bias: v[6] }); } },
  { key: "activation", afterExample: true, parse: (v) => (S.example.activations.includes(v) ? v : null),
    get: (s) => s.neuron?.activation, set: (s, v) => { s.neuron.activation = v; } },
  slider("a", "line-a"),
  slider("b", "line-b"),
  // y = ax + b by trial: the target "3:10" and the trials "1:1,4:3,..." (lesson 002's by default)
  { key: "target", afterExample: true, parse: (v) => (pairs(v)?.length === 1 ? pairs(v)[0] : null),
    get: (s) => s.trials && showPairs([[s.trials.x, s.trials.y]]), set: (s, [x, y]) => { Object.assign(s.trials, { x, y }); } },
  { key: "trials", afterExample: true, parse: (v) => (pairs(v)?.length <= 20 ? pairs(v) : null),
    get: (s) => s.trials && showPairs(s.trials.tried), set: (s, v) => { s.trials.tried = v; s.trials.chosen = 0; } },
  at("init", top, "init", { parse: (v) => (["zeros", "random"].includes(v) ? v : null), when: (s) => s.tab === "init" }),
];
$("line-a").value = 1;
$("line-b").value = 1;
readURL(URL_STATE.filter((row) => !row.afterExample), S);

function parseNeuron(text) {
  const values = numbers(text);
  return values.length === 7 && values.every(isFinite) ? values : null;
}

function saveURL() {
  writeURL(URL_STATE, S);
}

function showTab(tab) {
  S.tab = tab;
  document.querySelectorAll("[data-tab]").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === tab)));
  document.querySelectorAll(".tab-panel").forEach((p) => { p.hidden = p.id !== `tab-${tab}`; });
  saveURL();
  if (!S.example) return;  // a tab clicked before the example came: its arrival shows the tab
  const shown = ({ neuron: drawNeuron, activations: drawActivations, loss: updateLoss, line: () => { drawLine(); S.trialsTab.update(); },
     step: () => S.net || stepOnce(), batches: updateBatches, init: () => null, scaling: () => null })[tab]();
  Promise.resolve(shown).then(() => showBasics(S, tab));
}

// --- one neuron ----------------------------------------------------------------------------------

function fillNeuron() {
  const n = S.neuron;
  $("neuron-rows").replaceChildren(...n.inputs.map((x, i) => {
    const tr = document.createElement("tr");
    tr.innerHTML = `<th>${i + 1}</th><td><input type="number" step="0.1" data-kind="inputs"></td><td><input type="number" step="0.1" data-kind="weights"></td>`;
    tr.querySelectorAll("input").forEach((input) => {
      input.value = n[input.dataset.kind][i];
      input.setAttribute("aria-label", `${input.dataset.kind === "inputs" ? "x" : "w"}${i + 1}`);
      input.addEventListener("input", () => { n[input.dataset.kind][i] = Number(input.value) || 0; drawNeuron(); });
    });
    return tr;
  }));
  $("bias").value = n.bias;
  $("activation").value = n.activation;
}

async function drawNeuron() {
  const n = S.neuron;
  saveURL();
  const out = await sendJSON("POST", "/api/neuron/forward", n).catch((err) => ({ error: err.message }));
  if (out.error) { $("neuron-output").textContent = out.error; return; }
  const terms = n.inputs.map((x, i) => `${term(x, fmt)} × ${term(n.weights[i], fmt)}`).join(" + ");
  $("weighted-sum").textContent = `z = ${terms} + ${term(n.bias, fmt)} = ${fmt(out.sum)}`;
  $("neuron-output").textContent = `${n.activation}(${fmt(out.sum)}) = ${out.output.toFixed(2)}`;
  $("neuron-output").title = t("slope there: {s}", undefined, { s: fmt(out.slope) });
  if (!S.curves) S.curves = await getJSON("/api/neuron/activations");
  const c = S.curves, ys = c[n.activation].y;
  const frame = new Frame($("neuron-curve"), [c.z[0], c.z[c.z.length - 1]], [Math.min(-1, ...ys), Math.max(1, ...ys)]);
  frame.axes("z", `${n.activation}(z)`);
  frame.line(c.z.map((z, i) => [z, ys[i]]), COLOURS[0], 3);
  frame.pinned([out.sum, out.output], COLOURS[1], 9);
}

// --- activations ---------------------------------------------------------------------------------

async function drawActivations() {
  if (!S.curves) S.curves = await getJSON("/api/neuron/activations");
  // the step has its own plot beside sigmoid (neuron-basics.js): the chart keeps the activations
  const c = S.curves, names = S.example.activations.filter((n) => !(n in S.example.shapes)), zs = [c.z[0], c.z[c.z.length - 1]];
  const values = new Frame($("act-curves"), zs, [-1.5, 3]);
  const slopes = new Frame($("act-slopes"), zs, [-0.1, 1.2]);
  values.axes("z", "g(z)");
  slopes.axes("z", "g′(z)");
  names.forEach((name, k) => {
    values.clipped(() => values.line(c.z.map((z, i) => [z, c[name].y[i]]), CURVE_COLOURS[k], 3, DASHES[k]));
    slopes.clipped(() => slopes.line(c.z.map((z, i) => [z, c[name].slope[i]]), CURVE_COLOURS[k], 3, DASHES[k]));
  });
  $("act-legend").replaceChildren(...names.map((name, k) => {
    const li = document.createElement("li");
    li.style.setProperty("--colour", CURVE_COLOURS[k]);
    li.dataset.dash = k;
    li.textContent = name;
    return li;
  }));
}

// --- loss ---------------------------------------------------------------------------------------

const LOSS_CLASSES = 3;

function makeLossSliders() {
  $("loss-label").replaceChildren(...Array.from({ length: LOSS_CLASSES }, (_, i) => new Option(String(i), String(i))));
  $("loss-sliders").replaceChildren(...Array.from({ length: LOSS_CLASSES }, (_, i) => {
    const label = document.createElement("label");
    label.className = "row-field";
    label.innerHTML = `p${i} <input type="range" min="0" max="1" step="0.01"><output></output>`;
    const input = label.querySelector("input");
    input.value = [0.7, 0.2, 0.1][i];
    input.setAttribute("aria-label", t("probability of class {i}", undefined, { i }));
    input.addEventListener("input", () => rebalance(i));
    return label;
  }));
}

// Moving one probability shares the rest among the others in proportion: they always add to 1.
function rebalance(moved) {
  const inputs = [...$("loss-sliders").querySelectorAll("input")];
  const fixed = Number(inputs[moved].value), others = inputs.filter((_, i) => i !== moved);
  const rest = others.reduce((s, el) => s + Number(el.value), 0);
  others.forEach((el) => { el.value = rest > 0 ? (Number(el.value) / rest) * (1 - fixed) : (1 - fixed) / others.length; });
  updateLoss();
}

async function updateLoss() {
  const inputs = [...$("loss-sliders").querySelectorAll("input")];
  let p = inputs.map((el) => Number(el.value));
  const total = p.reduce((a, b) => a + b, 0) || 1;
  p = p.map((v) => v / total);
  inputs.forEach((el, i) => { el.nextElementSibling.textContent = p[i].toFixed(2); });
  const label = Number($("loss-label").value);
  const out = await sendJSON("POST", "/api/neuron/loss", { probabilities: p, label }).catch((err) => ({ error: err.message }));
  if (out.error) { $("mse-line").textContent = out.error; return; }
  $("one-hot").textContent = `${t("one-hot label")} y = (${out.one_hot.join(", ")})`;
  $("mse-line").textContent = `MSE = (${out.mse_terms.map((v) => fmt(v)).join(" + ")}) / ${p.length} = ${fmt(out.mse)}`;
  $("ce-line").textContent = `${t("cross-entropy")} = −log p${label} = −log ${fmt(out.p_label)} = ${fmt(out.cross_entropy)}`;
  showCosts(S, out);
}

// --- y = ax + b ----------------------------------------------------------------------------------

function drawLine() {
  const a = Number($("line-a").value), b = Number($("line-b").value);
  $("line-a-value").textContent = a.toFixed(1);
  $("line-b-value").textContent = b.toFixed(1);
  const errors = LINE_POINTS.x.map((x, i) => LINE_POINTS.y[i] - (a * x + b));  // target − prediction, as the slides write it
  $("line-errors").textContent = LINE_POINTS.x.map((x, i) =>
    `${fmt(a)}×${x} + ${fmt(b)} = ${fmt(a * x + b)} (${t("should be")} ${LINE_POINTS.y[i]}: ${t("error")} ${fmt(errors[i])})`).join(" · ");
  const mse = errors.reduce((s, e) => s + e * e, 0) / errors.length;
  $("line-mse").textContent = `MSE = ${fmt(mse)}${mse < 1e-9 ? " ✓" : ""}`;
  $("to-descent").href = `/descent?tab=line_fit&start=${a},${b}`;
  const frame = new Frame($("line-plot"), [0, 6], [-2, 14]);
  frame.axes("x", "y");
  frame.line([[0, b], [6, a * 6 + b]], COLOURS[0], 3);
  LINE_POINTS.x.forEach((x, i) => {
    frame.line([[x, LINE_POINTS.y[i]], [x, a * x + b]], COLOURS[1], 2, [4, 4]);
    frame.marker([x, LINE_POINTS.y[i]], "#222", "square", 7);
  });
  saveURL();
}

// --- one training step ---------------------------------------------------------------------------

function table(el, rows) {
  el.replaceChildren(...rows.map(([name, values]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = name;
    const td = document.createElement("td");
    td.textContent = (Array.isArray(values) ? values.flat() : [values]).map((v) => Number(v).toFixed(4)).join("  ");
    tr.append(th, td);
    return tr;
  }));
}

// The network drawn: every value in its node (x, h = sigmoid(z1), p), every weight on its edge,
// with its gradient under it; thicker edges for larger weights, orange for negative ones.
function drawNet(out, weights) {
  const canvas = $("step-net"), dpr = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const f = out.forward;
  const layers = [out.x, f.h, f.p];
  const names = [["x0", "x1"], ["h0", "h1", "h2"], ["p0", "p1"]];
  const X = [0.1, 0.5, 0.9].map((v) => v * width);
  const at = (l, i) => [X[l], ((i + 1) / (layers[l].length + 1)) * height];
  ctx.font = canvasFont(0.87);
  ctx.textAlign = "center";
  [[weights.w1, out.gradients.w1, 0], [weights.w2, out.gradients.w2, 1]].forEach(([w, g, l]) => {
    w.forEach((row, j) => row.forEach((v, i) => {
      const [x1, y1] = at(l, i), [x2, y2] = at(l + 1, j);
      ctx.strokeStyle = v < 0 ? COLOURS[1] : COLOURS[0];
      ctx.lineWidth = 1 + Math.min(6, Math.abs(v) * 6);
      ctx.beginPath();
      ctx.moveTo(x1, y1);
      ctx.lineTo(x2, y2);
      ctx.stroke();
      const mx = x1 + (x2 - x1) * (j % 2 ? 0.35 : 0.62), my = y1 + (y2 - y1) * (j % 2 ? 0.35 : 0.62);
      ctx.fillStyle = "#fff";
      ctx.fillRect(mx - 30, my - 15, 60, 30);
      ctx.fillStyle = "#111";
      ctx.fillText(v.toFixed(3), mx, my - 2);
      ctx.fillStyle = "#8a4500";
      ctx.fillText(`∇ ${g[j][i].toFixed(4)}`, mx, my + 12);
    }));
  });
  layers.forEach((values, l) => values.forEach((v, i) => {
    const [x, y] = at(l, i);
    ctx.fillStyle = l === 2 && i === out.label ? "#d7f0e6" : "#fff";
    ctx.strokeStyle = "#111";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, 30, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
    ctx.fillStyle = "#111";
    ctx.fillText(names[l][i], x, y - 6);
    ctx.fillText(Number(v).toFixed(3), x, y + 11);
  }));
}

// Steps run one after another (a quick second Space waits for the first step's new weights).
function stepOnce() {
  S.stepping = (S.stepping || Promise.resolve()).then(takeStep).catch((err) => { $("step-loss").textContent = err.message; });
  return S.stepping;
}

async function takeStep() {
  const before = S.net || S.example.net;
  const out = await sendJSON("POST", "/api/neuron/step", { net: S.net });
  S.net = out.updated;
  drawNet(out, before);
  S.steps += 1;
  const f = out.forward;
  $("step-count").textContent = S.steps;
  $("step-loss").textContent = t("loss {before} → {after} after the update", undefined, { before: out.loss.toFixed(4), after: out.loss_after.toFixed(4) });
  table($("step-forward"), [["x", out.x], ["z1 = w1·x + b1", f.z1], ["h = sigmoid(z1)", f.h], ["z2 = w2·h + b2", f.z2],
                            ["p = softmax(z2)", f.p], [`L = −log p${out.label}`, out.loss]]);
  table($("step-grads"), Object.entries(out.gradients).map(([k, g]) => [`∂L/∂${k}`, g]));
  table($("step-update"), Object.entries(out.updated).map(([k, w]) => [k, w]));
  $("step-chain").replaceChildren(...Object.entries(out.chain).map(([weight, c]) => {
    const p = document.createElement("p");
    p.className = "formula-line";
    const factors = Object.entries(c.factors).map(([k, v]) => `${k} = ${v.toFixed(4)}`).join(";  ");
    p.textContent = `∂L/∂${weight} = ${Object.values(c.factors).map((v) => v.toFixed(4)).join(" × ")} = ${c.product.toFixed(6)} (${factors}; autograd: ${c.autograd.toFixed(6)})`;
    return p;
  }));
}

function resetStep() {
  S.stepping = (S.stepping || Promise.resolve()).then(() => Object.assign(S, { net: null, steps: 0 }));
  stepOnce();
}

// --- batches -------------------------------------------------------------------------------------

async function updateBatches() {
  const q = new URLSearchParams({ samples: $("samples").value, batch_size: $("batch-size").value, epochs: $("batch-epochs").value });
  const out = await getJSON(`/api/neuron/batches?${q}`).catch((err) => ({ error: err.message }));
  if (out.error) { $("batch-answer").textContent = out.error; return; }
  S.batches = out;
  $("batch-answer").textContent = t("{n} batches an epoch (the last one has {last} samples) · {steps} steps in all",
    undefined, { n: out.batches_per_epoch, last: out.last_batch, steps: out.steps });
  const shown = Math.min(out.batches_per_epoch, 60);
  $("batch-boxes").replaceChildren(...Array.from({ length: shown }, (_, i) => {
    const li = document.createElement("li");
    li.textContent = i + 1;
    li.className = i === out.batches_per_epoch - 1 && out.last_batch !== Number($("batch-size").value) ? "last" : "";
    return li;
  }));
}

// The epochs played batch by batch, counted as the training lab counts its progress.
function playBatches() {
  clearInterval(S.batchTimer);
  const boxes = [...$("batch-boxes").children], epochs = Number($("batch-epochs").value) || 1;
  const per = S.batches ? S.batches.batches_per_epoch : boxes.length;
  let step = 0;
  const total = per * epochs;
  S.batchTimer = setInterval(() => {
    step += 1;
    const epoch = Math.ceil(step / per), batch = ((step - 1) % per) + 1;
    boxes.forEach((b, i) => b.classList.toggle("current", i === (batch - 1) % boxes.length));
    $("batch-counter").textContent = t("Epoch {e}/{E} · batch {b}/{B} · step {s}/{S}", undefined,
      { e: epoch, E: epochs, b: batch, B: per, s: step, S: total });
    if (step >= Math.min(total, 2000)) clearInterval(S.batchTimer);
  }, Math.max(30, 2400 / Math.min(total, 80)));
}

// --- wiring --------------------------------------------------------------------------------------

// the tabs switch at once; every other control acts once the example has come (`ready`)
const ready = (act) => (...args) => S.example && act(...args);
document.querySelectorAll("[data-tab]").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
$("bias").addEventListener("input", ready(() => { S.neuron.bias = Number($("bias").value) || 0; drawNeuron(); }));
$("activation").addEventListener("change", ready(() => { S.neuron.activation = $("activation").value; drawNeuron(); }));
$("slides-neuron").addEventListener("click", ready(() => { S.neuron = structuredClone(S.example.neuron); fillNeuron(); drawNeuron(); }));
$("loss-label").addEventListener("change", ready(updateLoss));
for (const id of ["line-a", "line-b"]) $(id).addEventListener("input", ready(drawLine));
for (const id of ["samples", "batch-size", "batch-epochs"]) $(id).addEventListener("input", ready(updateBatches));
$("one-step").addEventListener("click", ready(stepOnce));
$("batch-play").addEventListener("click", ready(playBatches));
$("step-reset").addEventListener("click", ready(resetStep));
document.addEventListener("keydown", (e) => {
  if (!isShortcut(e) || S.tab !== "step" || !S.example) return;
  if (e.key === " ") { e.preventDefault(); stepOnce(); }
  if (e.key === "r" || e.key === "R") resetStep();
});
window.addEventListener("resize", () => showTab(S.tab));

getJSON("/api/neuron/example").then((example) => {
  S.example = example;
  // the neuron-only shapes by their label (the step function), the activations by their names
  $("activation").replaceChildren(...example.activations.map((a) => new Option(example.shapes[a] ? t(example.shapes[a]) : a, a)));
  S.neuron = structuredClone(example.neuron);
  S.trials = { x: example.trials.x, y: example.trials.y, tried: structuredClone(example.trials.trials), chosen: 0 };
  readURL(URL_STATE.filter((row) => row.afterExample), S);
  S.trialsTab = new Trials(S, example.trials, saveURL);
  fillNeuron();
  makeLossSliders();
  showTab(S.tab);
});
