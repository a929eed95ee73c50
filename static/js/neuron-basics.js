// /neuron, the training basics lesson 002 names, each drawn from the server's torch numbers: the
// step beside sigmoid and maxout's two learned lines (activations tab), the four cost functions
// (loss tab), full batch beside mini-batch (batches tab), zero against random initialisation
// (init tab) and centring and scaling with what it does to gradient descent (scaling tab).
import { getJSON } from "./api.js";
import { $ } from "./dom.js";
import { fmt } from "./format.js";
import { t } from "./i18n.js";
import { COLOURS, Frame, canvasFont, chartText } from "./plot.js";

const bigText = () => canvasFont(Math.max(1, 20 / chartText().size));
const wired = new Set();

function once(key, wire) {
  if (!wired.has(key)) { wired.add(key); wire(); }
}

// The plot's key in its top corner (the right one where the curves start high on the left).
function legend(frame, entries, side = "left") {
  const ctx = frame.ctx;
  ctx.font = bigText();
  ctx.textAlign = side;
  const x = side === "left" ? frame.pad + 12 : frame.width - frame.pad / 2 - 8;
  entries.forEach(([text, colour], i) => {
    ctx.fillStyle = colour;
    ctx.fillText(text, x, frame.pad / 2 + 22 + i * 26);
  });
}

// --- activations: the step beside sigmoid, maxout learned ------------------------------------------

function drawStep(S) {
  const c = S.curves;
  if (!c || !c.step) return;
  const frame = new Frame($("step-plot"), [c.z[0], c.z[c.z.length - 1]], [-0.1, 1.15]);
  frame.axes("z", "g(z)");
  frame.line(c.z.map((z, i) => [z, c.sigmoid.y[i]]), COLOURS[0], 3);
  // the step's jump drawn as two flat pieces, not a slanted line between them
  frame.line(c.z.filter((z) => z < 0).map((z) => [z, 0]), COLOURS[1], 4, [8, 4]);
  frame.line(c.z.filter((z) => z >= 0).map((z) => [z, 1]), COLOURS[1], 4, [8, 4]);
  legend(frame, [["sigmoid", COLOURS[0]], [`${t("step function")} (${t("slope")} 0)`, COLOURS[1]]]);
}

const last = {};  // the last answer of each panel: drawn again when the window changes size

async function learnMaxout() {
  const target = $("maxout-target").value;
  const out = await getJSON(`/api/neuron/maxout?target=${encodeURIComponent(target)}`).catch((err) => ({ error: err.message }));
  if (out.error) { $("maxout-answer").textContent = out.error; return; }
  last.maxout = out;
  drawMaxout(out);
}

function drawMaxout(out) {
  const [p, q] = out.pieces;
  const line = (k) => `${fmt(k.slope)}·x ${k.intercept < 0 ? "−" : "+"} ${fmt(Math.abs(k.intercept))}`;
  $("maxout-answer").textContent = t("learned: max({p}, {q}); MSE {loss} after {n} steps", undefined,
    { p: line(p), q: line(q), loss: fmt(out.final_loss), n: out.loss.length });
  const xs = [out.x[0], out.x[out.x.length - 1]];
  const frame = new Frame($("maxout-plot"), xs, [Math.min(-1, ...out.y), Math.max(2.2, ...out.y)]);
  frame.axes("x", "y");
  frame.clipped(() => {
    [p, q].forEach((k, i) => frame.line(xs.map((x) => [x, k.slope * x + k.intercept]), COLOURS[i + 2], 2, [6, 4]));
    frame.line(out.x.map((x, i) => [x, out.output[i]]), COLOURS[0], 4);
  });
  out.x.forEach((x, i) => { if (i % 4 === 0) frame.marker([x, out.y[i]], "#222", "square", 5); });
  legend(frame, [[t("max of the two"), COLOURS[0]], [t("line 1"), COLOURS[2]], [t("line 2"), COLOURS[3]]]);
}

function activations(S) {
  once("maxout", () => {
    $("maxout-target").replaceChildren(...Object.entries(S.example.maxout_targets).map(([name, label]) => new Option(t(label), name)));
    $("maxout-learn").addEventListener("click", learnMaxout);
  });
  drawStep(S);
  if (last.maxout) drawMaxout(last.maxout);
  else learnMaxout();
}

// --- loss: the four cost functions of the slide's table ---------------------------------------------

export function showCosts(S, out) {
  $("cost-rows").replaceChildren(...S.example.losses.map(({ name, label, use }) => {
    const tr = document.createElement("tr");
    tr.dataset.loss = name;
    for (const text of [t(label), t(use), fmt(out[name])]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
}

// --- batches: full batch beside mini-batch -----------------------------------------------------------

async function race() {
  const q = new URLSearchParams({ samples: $("samples").value, batch_size: $("batch-size").value,
    epochs: Math.min(20, Number($("batch-epochs").value) || 1) });
  const out = await getJSON(`/api/neuron/batch-race?${q}`).catch((err) => ({ error: err.message }));
  if (out.error) { $("race-answer").textContent = out.error; return; }
  last.race = out;
  drawRace(out);
}

function drawRace(out) {
  const { full, mini } = out, epochs = full.epoch_ends.length;
  $("race-answer").textContent = t("full batch: {f} steps, loss {fl} · mini-batch of {b}: {m} steps, loss {ml} (after {e} epochs)", undefined,
    { f: full.loss.length, fl: fmt(full.loss[full.loss.length - 1]), b: mini.batch_size, m: mini.loss.length,
      ml: fmt(mini.loss[mini.loss.length - 1]), e: epochs });
  // drawn against epochs: a full-batch step is a whole epoch, a mini-batch step a fraction of one
  const top = Math.max(...full.loss, ...mini.loss);
  const frame = new Frame($("race-plot"), [0, epochs], [0, top * 1.05]);
  frame.axes(t("epoch"), t("loss"));
  const points = (run) => run.loss.map((v, i) => [(i + 1) / run.steps_per_epoch, v]);
  frame.line(points(mini), COLOURS[1], 2);
  frame.line(points(full), COLOURS[0], 3);
  points(full).forEach((p) => frame.marker(p, COLOURS[0], "circle", 7));
  legend(frame, [[t("full batch"), COLOURS[0]], [t("mini-batch"), COLOURS[1]]], "right");
}

function batches() {
  once("batches", () => {
    $("full-batch").addEventListener("click", () => {
      $("batch-size").value = $("samples").value;
      $("batch-size").dispatchEvent(new Event("input"));
    });
    $("batch-race").addEventListener("click", race);
  });
  if (last.race) drawRace(last.race);
}

// --- initialisation: zeros cannot break the symmetry ------------------------------------------------

async function symmetry() {
  const q = new URLSearchParams({ init: $("init-kind").value, steps: $("init-steps").value || 0 });
  const out = await getJSON(`/api/neuron/symmetry?${q}`).catch((err) => ({ error: err.message }));
  if (out.error) { $("init-answer").textContent = out.error; return; }
  const last = out.history[out.history.length - 1];
  $("init-answer").textContent = (last.identical
    ? t("After {n} steps the three hidden neurons are still identical ✗", undefined, { n: last.step })
    : t("After {n} steps the three hidden neurons differ ✓", undefined, { n: last.step }))
    + ` · ${t("loss")} ${fmt(out.history[0].loss)} → ${fmt(last.loss)}`;
  $("init-answer").dataset.state = last.identical ? "same" : "differ";
  $("init-rows").replaceChildren(...last.hidden.map((row, j) => {
    const tr = document.createElement("tr");
    for (const text of [`h${j + 1}`, ...row.map((v) => v.toFixed(3)), last.out[j].toFixed(3)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
}

function init(S) {
  once("init", () => {
    $("init-kind").value = S.init || "zeros";
    for (const id of ["init-kind", "init-steps"]) $(id).addEventListener("change", () => { S.init = $("init-kind").value; S.save(); symmetry(); });
  });
  symmetry();
}

// --- centring and scaling ---------------------------------------------------------------------------

function fillTable(el, head, rows, format) {
  const tr = document.createElement("tr");
  for (const h of head) { const th = document.createElement("th"); th.textContent = h; tr.append(th); }
  el.replaceChildren(tr, ...rows.map((row) => {
    const r = document.createElement("tr");
    for (const v of row) { const td = document.createElement("td"); td.textContent = format(v); r.append(td); }
    return r;
  }));
}

async function scaling() {
  const out = await getJSON("/api/neuron/scaling").catch((err) => ({ error: err.message }));
  if (out.error) { $("scaling-answer").textContent = out.error; return; }
  fillTable($("raw-table"), out.features.map((f) => t(f)), out.rows, (v) => v.toLocaleString("en-US"));
  fillTable($("scaled-table"), ["x1", "x2", "x3"], out.scaled, (v) => v.toFixed(2));
  const { raw, scaled } = out.descent;
  const said = (run) => (run.steps_to_minimum === null
    ? t("not at the minimum after {n} steps", undefined, { n: run.loss.length - 1 })
    : t("at the minimum in {n} steps", undefined, { n: run.steps_to_minimum }));
  $("scaling-answer").textContent = t("Age as it is ({ages}): learning rate {lr1} at most, {r1} · centred and scaled: learning rate {lr2}, {r2}",
    undefined, { ages: raw.x.join(", "), lr1: fmt(raw.learning_rate), r1: said(raw), lr2: fmt(scaled.learning_rate), r2: said(scaled) });
  const steps = Math.max(raw.loss.length, scaled.loss.length) - 1;
  const frame = new Frame($("scaling-plot"), [0, steps], [0, Math.max(...raw.loss, ...scaled.loss) * 1.05]);
  frame.axes(t("step"), t("loss (MSE)"));
  frame.line(raw.loss.map((v, i) => [i, v]), COLOURS[1], 3);
  frame.line(scaled.loss.map((v, i) => [i, v]), COLOURS[0], 3);
  legend(frame, [[t("Age as it is"), COLOURS[1]], [t("centred and scaled"), COLOURS[0]]], "right");
}

export function showBasics(S, tab) {
  if (!S.example) return;
  if (tab === "activations") activations(S);
  else if (tab === "batches") batches();
  else if (tab === "init") init(S);
  else if (tab === "scaling") scaling();
}
