// Training page: a form -> POST /api/train -> events over /ws/train/{id} -> curves, progress,
// test images, confusion matrix. Controls steer the job; the job id survives a reload.
import { t } from "./i18n.js";
import { control, readURL, writeURL } from "./url-state.js";
import { LiveSocket, getJSON, pageConfig, sendJSON } from "./api.js";
import { LayerEditor } from "./layers.js";
import { modelName } from "./server-text.js";
import { Curves, showConfusion, showFolds, showMistakes, showOverfitting, showProgress, showRuns, showSamples } from "./train-view.js";
import { isShortcut } from "./keys.js";
import { confusionCanvas, filterSheet, reportButtons, saveReport } from "./report.js";
import { $ } from "./dom.js";

const config = pageConfig();
const form = $("setup");
const JOB_KEY = "neuronlab.train.job";
// A job's statuses, from the server (engine/choices.py): each by name, and those once it is over.
const { QUEUED, RUNNING, PAUSED, FAILED, INTERRUPTED, DIVERGED } = config.jobStatus;
const FINAL = config.finalStatuses;
const state = { job: null, status: "idle", seq: 0, socket: null, spec: null, batches: 0, results: [] };
const curves = new Curves($("loss-chart"), $("acc-chart"));
const editor = new LayerEditor({
  select: $("preset"), tbody: $("layers"), total: $("param-total"),
  onChange: (error) => { $("form-error").textContent = error || ""; saveForm(); showEstimate(); },
});

// --- the form, mirrored in the URL so a link reproduces the setup --------------------------

const URL_STATE = [
  ...["dataset", "train_size", "val_size", "optimizer", "learning_rate", "race", "batch_size", "epochs", "seed", "augment",
    "weight_decay", "dropout", "keep_best", "patience", "compare", "kfold", "folds", "fold_images"]
    .map((name) => control(form, name)),
  { key: "architecture", get: () => editor.preset || null, set: (s, v) => { s.architecture = v; } },
];

function saveForm() {
  writeURL(URL_STATE, {});
}

// The form as the address gives it; the preset the address names (the editor loads it).
function restoreForm() {
  const asked = readURL(URL_STATE, {});
  setLearningRate(Number(form.elements.learning_rate.value) || 0.01, false);
  return asked.architecture || null;
}

function request(startPaused = false) {
  const f = form.elements;
  const race = f.race.value.split(/[ ,;]+/).filter(Boolean).map(Number);
  return {
    dataset: f.dataset.value, architecture: editor.value(), optimizer: f.optimizer.value,
    learning_rate: Number(f.learning_rate.value), learning_rates: race.length ? race : null,
    batch_size: Number(f.batch_size.value), epochs: Number(f.epochs.value), seed: Number(f.seed.value),
    train_size: f.train_size.value === "all" ? null : Number(f.train_size.value),
    val_size: Number(f.val_size.value),
    augment: f.augment.checked, start_paused: startPaused,
    weight_decay: Number(f.weight_decay.value), dropout: Number(f.dropout.value), keep_best: f.keep_best.checked,
    patience: f.patience.value ? Number(f.patience.value) : null, compare: f.compare.checked,
    ...(f.kfold.checked ? kfoldRequest() : {}),
  };
}

// Lesson 000's project: the recipe evaluated by k-fold cross-validation; the images cut into folds
// (all 60,000 in the slide's run; fewer for a live class), each fold held out in turn.
function kfoldRequest() {
  const f = form.elements;
  return { folds: Number(f.folds.value), train_size: f.fold_images.value === "all" ? null : Number(f.fold_images.value) };
}

const number = (n) => n.toLocaleString(document.documentElement.lang || undefined);  // 60,000 / 60.000

// "about 1 h 44 min" / "about 12 min" / "about 40 s"
function duration(seconds) {
  const s = Math.round(seconds);
  if (s >= 3600) return t("about {h} h {m} min", undefined, { h: Math.floor(s / 3600), m: Math.round((s % 3600) / 60) });
  return s >= 90 ? t("about {m} min", undefined, { m: Math.round(s / 60) }) : t("about {s} s", undefined, { s });
}

// Before a k-fold job starts, how long it takes on this server: the server times a few of the
// network's mini-batches (POST /api/train/estimate) and says whether it fits its limit.
let estimateTimer = null, estimateAsked = 0;
function showEstimate() {
  const box = $("kfold-estimate");
  clearTimeout(estimateTimer);
  if (!form.elements.kfold.checked) { box.textContent = ""; box.classList.remove("too-long"); return; }
  const asked = ++estimateAsked;
  box.textContent = t("Timing this network on this server…");
  estimateTimer = setTimeout(async () => {
    try {
      const e = await sendJSON("POST", "/api/train/estimate", request());
      if (asked !== estimateAsked) return;
      const held = Math.ceil(e.images / e.folds);
      box.classList.toggle("too-long", !e.fits);
      box.textContent = [
        t("Each fold trains on {n} images and tests on {h}: {b} mini-batches an epoch.", undefined,
          { n: number(e.images - held), h: number(held), b: number(e.batches) }),
        t("Estimate: {d} on this server ({ms} ms a mini-batch of {bs}, timed here now; slower while a class draws live).",
          undefined, { d: duration(e.estimate_s), ms: (e.speed.step_s * 1000).toFixed(1), bs: e.speed.batch_size }),
        e.fits ? t("It runs in the background; the page can be closed and opened again.")
          : t("Longer than a k-fold job may train here ({l}): choose fewer epochs, images or folds.", undefined, { l: duration(e.limit_s) }),
      ].join(" ");
    } catch (err) {
      if (asked === estimateAsked) { box.classList.add("too-long"); box.textContent = err.message; }
    }
  }, 300);
}
form.addEventListener("change", showEstimate);
// k folds or a comparison: one job is one or the other
// (with k folds, the images cut into folds replace the training and validation sizes)
function kfoldChosen() {
  const on = form.elements.kfold.checked;
  form.elements.train_size.disabled = form.elements.val_size.disabled = on;
  if (on) form.elements.compare.checked = false;
}
form.elements.kfold.addEventListener("change", kfoldChosen);
form.elements.compare.addEventListener("change", () => {
  if (form.elements.compare.checked) { form.elements.kfold.checked = false; kfoldChosen(); }
});

// Lessons 003 and 004: the same small-data run without and with weight decay, dropout and the
// best epoch kept, its curves overlaid (the "without" run overfits after a few epochs).
// Forty epochs: the run with them then tests at least as well as the one without on every seed tried
// (docs/benchmarks.md); at twenty their best epochs came too early and it did not.
const READY_COMPARISON = {
  dataset: "mnist", train_size: "500", val_size: "1000", optimizer: "momentum", batch_size: "32", epochs: "40",
  seed: "0", race: "", weight_decay: "0.005", dropout: "0.5", patience: "", keep_best: true, compare: true, augment: false,
  kfold: false,
};
function loadReadyComparison() {
  for (const [name, value] of Object.entries(READY_COMPARISON)) {
    const input = form.elements[name];
    if (typeof value === "boolean") input.checked = value;
    else input.value = value;
  }
  setLearningRate(0.1, false);
  return editor.choose("mlp_512_128");  // (saves the form, the network with it, once described)
}
$("ready-comparison").addEventListener("click", loadReadyComparison);

// Each run's name when the runs differ in more than their rate; null for one run or a race.
function runLabels(spec) {
  if (!spec) return null;
  if (spec.compare) return [t("without"), t("with")];
  if (spec.folds) return spec.learning_rates.map((lr, i) => t("fold {n}", undefined, { n: i + 1 }));
  return null;
}

function showOverfit() {
  const labels = state.labels;
  showOverfitting($("overfit-note"), state.overfit.map((run, i) => run && { ...run, name: labels ? labels[i] : state.overfit.length > 1 ? `lr ${state.runs[i]}` : "" }));
}

// --- learning rate: a log slider and a typed value, live while training --------------------

let lrTimer = null;
function setLearningRate(lr, send = true) {
  lr = Math.min(10, Math.max(1e-4, lr));
  form.elements.learning_rate.value = Number(lr.toPrecision(3));
  $("lr-slider").value = Math.log10(lr);
  saveForm();
  if (send && state.job && !FINAL.includes(state.status)) {
    clearTimeout(lrTimer);
    lrTimer = setTimeout(() => command("PATCH", "", { learning_rate: Number(form.elements.learning_rate.value) }), 250);
  }
}
$("lr-slider").addEventListener("input", (e) => setLearningRate(10 ** Number(e.target.value)));
form.elements.learning_rate.addEventListener("change", (e) => setLearningRate(Number(e.target.value)));
form.addEventListener("change", saveForm);

// --- the job ---------------------------------------------------------------------------------

async function start(startPaused = false) {
  $("form-error").textContent = "";
  try {
    const job = await sendJSON("POST", "/api/train", request(startPaused));
    attach(job.id);
    if (job.estimate_s) {
      state.estimate = job.estimate_s;
      $("progress-text").textContent = t("A k-fold job: {d} on this server (estimated before it started). It trains in the background.",
        undefined, { d: duration(job.estimate_s) });
    }
    return job;
  } catch (err) {
    $("form-error").textContent = err.message;
  }
}

async function command(method, action, body) {
  if (!state.job) return;
  try {
    await sendJSON(method, `/api/train/${state.job}${action}`, body);
  } catch (err) {
    $("form-error").textContent = err.message;
  }
}

function attach(jobId) {
  if (state.socket) state.socket.close();
  Object.assign(state, { job: jobId, seq: 0, status: QUEUED, results: [] });
  localStorage.setItem(JOB_KEY, jobId);
  $("results").hidden = true;
  $("final-answer").hidden = true;
  $("samples").replaceChildren();
  $("runs").replaceChildren();
  $("overfit-note").replaceChildren();
  $("overfit-note").hidden = true;
  $("kfold-summary").hidden = true;
  state.overfit = [];
  state.folds = null;
  state.labels = null;
  state.runInfo = null;
  state.socket = new LiveSocket(() => `/ws/train/${jobId}?since=${state.seq}`, { onMessage });
}

function onMessage(e) {
  if (e.type === "error") { localStorage.removeItem(JOB_KEY); return setStatus("idle"); }
  state.seq = e.seq;
  if (e.seq === 1) loadSpec();
  if (e.type === "status") {
    if (e.total_steps) {
      state.batches = e.batches;
      state.folds = e.folds || null;
      state.runs = e.learning_rates;
      state.rates = [...e.learning_rates];  // each run's rate now: the progress names every one
      state.runInfo = e.learning_rates.map((lr, i) => ({ lr, label: state.labels ? state.labels[i] : undefined }));
      showRuns($("runs"), state.runInfo, !state.folds);
    }
    setStatus(e.status, e.position, e.starting);
    if (e.slot_released) $("progress-text").textContent = t("Paused for a while, so its place went to the next job in the queue: Resume puts it back in line.");
  } else if (e.type === "progress") {
    curves.progress(e);
    if (state.runInfo) {
      Object.assign(state.runInfo[e.run], { loss: e.loss, accuracy: e.accuracy });
      showRuns($("runs"), state.runInfo, !state.folds);
    }
    if (state.rates) state.rates[e.run] = e.learning_rate;
    if (e.run === 0 || state.folds) state.progress = e;  // a k-fold job's folds train one after the other
    if (e.run === 0 || state.folds) showProgress($("progress-fill"), $("progress-text"), e, state.spec ? state.spec.epochs : "?", state.rates, state.folds);
  } else if (e.type === "learning_rate" && state.progress) {
    if (state.rates) state.rates = state.rates.map((lr, i) => (e.run === null || e.run === i ? e.value : lr));
    if (e.run === null || e.run === 0) state.progress = { ...state.progress, learning_rate: e.value };
    showProgress($("progress-fill"), $("progress-text"), state.progress, state.spec ? state.spec.epochs : "?", state.rates, state.folds);
  } else if (e.type === "epoch") {
    curves.epoch(e, state.batches);
    state.overfit[e.run] = { ...state.overfit[e.run], epoch: e };
    showOverfit();
    if (state.runInfo && state.runInfo[e.run]) { state.runInfo[e.run].val = e.val_accuracy; showRuns($("runs"), state.runInfo, !state.folds); }
  } else if (e.type === "samples") {
    showSamples($("samples"), e, labels());
  } else if (e.type === "run_status") {
    if (state.runInfo) { state.runInfo[e.run].diverged = true; showRuns($("runs"), state.runInfo, !state.folds); }
    announce(t("The run with learning rate {lr} diverged: {why}", undefined, { lr: state.runs[e.run], why: e.message }));
  } else if (e.type === "done") {
    state.socket.close();
    if (state.runInfo) {
      for (const r of e.results || []) if (state.runInfo[r.run]) state.runInfo[r.run].test = r.test_accuracy;
      showRuns($("runs"), state.runInfo, !state.folds);
    }
    for (const r of e.results || []) if (state.overfit[r.run]) state.overfit[r.run].result = r;
    showOverfit();
    finish(e);
  }
}

async function loadSpec() {
  const job = await getJSON(`/api/train/${state.job}`);
  state.spec = job.spec;
  state.folds = job.spec.folds || state.folds;
  state.labels = runLabels(job.spec);
  curves.reset(job.spec.learning_rates, state.labels);
  if (state.runInfo) {
    state.runInfo.forEach((run, i) => { run.label = state.labels ? state.labels[i] : undefined; });
    showRuns($("runs"), state.runInfo, !state.folds);
  }
}

const labels = () => config.labels[(state.spec || {}).dataset || "mnist"];

function setStatus(status, position, starting = false) {
  state.status = status;
  const badge = $("job-status");
  badge.dataset.status = status;
  badge.textContent = status === QUEUED && position ? t("queued · position {n}", undefined, { n: position })
    : t(status === "idle" ? "ready" : status);
  const active = state.job && !FINAL.includes(status) && status !== "idle";
  $("pause").disabled = ![RUNNING, PAUSED].includes(status);
  const kbd = document.createElement("kbd");
  kbd.textContent = "P";
  $("pause").replaceChildren(`${t(status === PAUSED ? "▶ Resume" : "‖ Pause")} `, kbd);
  $("stop").disabled = !active;
  $("train").disabled = active;
  if (status === QUEUED) $("progress-text").textContent = t("Waiting for the machine: position {n} in the queue.", undefined, { n: position });
  if (starting) $("progress-text").textContent = t("Starting the training process and loading the data…");
}

function finish(e) {
  setStatus(e.status);
  state.results = e.results || [];
  $("final-answer").hidden = true;
  if (e.status === FAILED) $("progress-text").textContent = `${t("Training failed:")} ${e.error}`;
  if (e.status === INTERRUPTED) $("progress-text").textContent = `${t("Interrupted:")} ${e.error || ""}`;
  if (e.status === DIVERGED) {
    $("progress-text").textContent = t("Diverged: the loss blew up. The learning rate is too large — try a smaller one.");
  }
  if (e.reason) $("progress-text").textContent += ` (${e.reason})`;
  if (!state.results.length) return;
  const best = state.results.reduce((a, b) => (b.test_accuracy > a.test_accuracy ? b : a));
  showSaved(state.results);
  const bestLr = Number(best.learning_rate.toPrecision(3));
  const bestLabel = state.labels ? state.labels[best.run] : null;  // a comparison's or a fold's run, by name
  $("confusion-run").textContent = state.results.length < 2 ? ""
    : ` ${bestLabel ? t("of the best run ({name})", undefined, { name: bestLabel }) : t("of the best run (lr {lr})", undefined, { lr: bestLr })}`;
  // a job recovered after a restart has its saved models' scores but no confusion matrix
  $("confusion").closest(".confusion-box").hidden = !best.confusion;
  if (best.confusion) showConfusion($("confusion"), best, labels(), (t, p) => showMistakes($("mistakes"), best, labels(), t, p));
  $("results").hidden = false;
  showFinalAnswer(best, state.results.length > 1 ? bestLr : null, bestLabel);
  if (e.folds) {  // the k-fold summary, as the lesson's loop prints it, on screen
    showFolds($("kfold-summary"), e.folds);
    $("kfold-summary").scrollIntoView({ block: "nearest" });
  }
  announce(t("Training {status}. Test accuracy {p} percent.", undefined, { status: t(e.status), p: (best.test_accuracy * 100).toFixed(1) }));
}

// The answer of the run, the test accuracy, right under the controls, and on screen: a projector
// or a phone that shows the set-up first is scrolled to it.
function showFinalAnswer(best, raceLr, label = null) {
  const answer = $("final-answer");
  const strong = document.createElement("strong");
  strong.textContent = `${(best.test_accuracy * 100).toFixed(2)}%`;
  answer.replaceChildren(`${t("Test accuracy")} `, strong,
    raceLr === null ? "" : ` · ${label ? t("best: {name}", undefined, { name: label }) : t("best: lr {lr}", undefined, { lr: raceLr })}`);
  answer.hidden = false;
  const box = answer.getBoundingClientRect();
  const header = document.querySelector("header");
  const top = header && getComputedStyle(header).position.match(/sticky|fixed/) ? header.getBoundingClientRect().bottom : 0;
  if (box.top < top || box.bottom > window.innerHeight) answer.scrollIntoView({ block: "center" });
}

function showSaved(results) {
  const box = $("saved");
  box.replaceChildren();
  for (const r of results) {
    const p = document.createElement("p");
    const strong = document.createElement("strong");
    strong.textContent = `${(r.test_accuracy * 100).toFixed(2)}%`;
    const which = state.labels && state.labels[r.run] ? state.labels[r.run] : `lr ${Number(r.learning_rate.toPrecision(3))}`;
    p.append(`${t("Test accuracy")} `, strong, ` (${which}) · ${t("saved as")} `);
    const name = document.createElement("q");  // the model's name, as every list shows it (its id is in the links)
    name.className = "model-name";
    name.textContent = modelName(r);
    name.title = r.model_id;
    const id = document.createElement("code");  // the id, not shown: for scripts reading the page
    id.className = "model-id";
    id.hidden = true;
    id.textContent = r.model_id;
    p.append(name, id, " · ");
    for (const [text, href] of [[t("Draw with it"), `/draw?model=${r.model_id}`],
      [t("Weights"), `/api/models/${r.model_id}/weights`], [t("PyTorch script"), `/api/models/${r.model_id}/export`]]) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      p.append(a, " ");
    }
    const rename = document.createElement("button");
    rename.type = "button";
    rename.textContent = t("Rename");
    rename.addEventListener("click", async () => {
      const given = prompt(t("New name for this model"), name.textContent);
      if (given) {
        await sendJSON("PATCH", `/api/models/${r.model_id}`, { name: given })
          .then(() => { name.textContent = r.name = given; r.made_name = null; }).catch((err) => alert(err.message));
      }
    });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = t("Delete");
    remove.addEventListener("click", async () => {
      if (!confirm(t("Delete {name}?", undefined, { name: name.textContent }))) return;
      await sendJSON("DELETE", `/api/models/${r.model_id}`).then(() => p.remove()).catch((err) => alert(err.message));
    });
    p.append(rename, " ", remove);
    box.append(p);
  }
}

function announce(text) {
  $("announce").textContent = text;
}

// --- controls ----------------------------------------------------------------------------

// Keys and buttons send only what the job's state allows (after the end, P does nothing).
function togglePause() {
  if (state.status === RUNNING) return command("POST", "/pause");
  if (state.status === PAUSED) return command("POST", "/resume");
}
function step() {
  if (state.job && [RUNNING, PAUSED].includes(state.status)) return command("POST", "/step");
  // No job yet: start one paused; the step waits in its queue until the worker is ready.
  if (!state.job || FINAL.includes(state.status) || state.status === "idle") {
    start(true).then((job) => job && command("POST", "/step"));
  }
}
$("train").addEventListener("click", () => start(false));
$("pause").addEventListener("click", togglePause);
$("step").addEventListener("click", step);
$("stop").addEventListener("click", () => command("POST", "/stop"));
$("add-layer").addEventListener("click", () =>
  editor.add($("new-layer").value, $("new-activation").value, Number($("new-size").value)));
document.addEventListener("keydown", (e) => {
  if (!isShortcut(e) || e.shiftKey) return;  // Shift+P is projector mode, not pause
  if (e.key === " ") { e.preventDefault(); step(); }
  if (e.key === "p" || e.key === "P") togglePause();
  if (e.key === "ArrowUp" || e.key === "ArrowRight") { e.preventDefault(); setLearningRate(Number(form.elements.learning_rate.value) * 10 ** 0.1); }
  if (e.key === "ArrowDown" || e.key === "ArrowLeft") { e.preventDefault(); setLearningRate(Number(form.elements.learning_rate.value) / 10 ** 0.1); }
});

const preset = restoreForm();
kfoldChosen();
editor.init(preset || "mnist_recipe");
const saved = localStorage.getItem(JOB_KEY);
if (saved) getJSON(`/api/train/${saved}`).then(() => attach(saved)).catch(() => localStorage.removeItem(JOB_KEY));

// Whether an architecture (a preset's name or a layer list) has a conv layer: a filter sheet.
async function hasConv(architecture) {
  if (!architecture) return false;
  if (typeof architecture === "string") {
    const { presets } = await getJSON("/api/architectures");
    architecture = (presets.find((p) => p.name === architecture) || { layers: [] }).layers;
  }
  return architecture.some((layer) => layer.type === "conv");
}

// --- the lab report: settings, curves, confusion matrix and a filter sheet, with the lesson QR ---

reportButtons(document.querySelector(".run-panel .controls"), async () => {
  const settings = [...new FormData(form).entries()].filter(([, v]) => v !== "").map(([k, v]) => [k, v]);
  settings.push([t("status"), state.status]);
  const parts = [{ canvas: $("loss-chart"), title: t("Loss") }, { canvas: $("acc-chart"), title: t("Accuracy") }];
  if (state.results.length) {
    const best = state.results.reduce((a, b) => (b.test_accuracy > a.test_accuracy ? b : a));
    settings.push([t("test accuracy"), `${(best.test_accuracy * 100).toFixed(2)}%`], [t("model"), modelName(best)]);
    parts.push({ canvas: confusionCanvas(best.confusion, labels()), title: t("Confusion matrix") });
    if (await hasConv(state.spec && state.spec.architecture)) {
      const filters = await getJSON(`/api/models/${best.model_id}/filters`);
      parts.push({ canvas: filterSheet(filters.layers[0]), title: t("First conv layer") });
    }
  }
  await saveReport("train", { title: t("Training lab"), settings, parts });
});
