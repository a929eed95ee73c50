// Gradient descent page: every point of a path is a real optimizer step computed on the server
// (POST /api/descent/run); STEP reveals the next one, RUN animates, RESET starts again.
import { t } from "./i18n.js";
import { at, numbers, positive, readURL, writeURL } from "./url-state.js";
import { getJSON, pageConfig, sendJSON } from "./api.js";
import { COLOURS } from "./plot.js";
import { drawExercise, drawSplit } from "./descent-view.js";
import { isShortcut } from "./keys.js";
import { reportButtons, saveReport } from "./report.js";
import { $ } from "./dom.js";
import { SplitTab } from "./descent-split.js";

const MAX_STEPS = 500;
// the optimizer every exercise starts with and the split network's activation: the server's (engine/choices.py)
const { defaultOptimizer, defaultActivation } = pageConfig();
const S = {
  tab: "parabola", problem: "bowl", optimizer: defaultOptimizer, lr: 0.08, momentum: 0.9,
  starts: {},                      // problem -> dragged start
  data: null,
  race: [],
  n: 0, runs: [], problems: {}, surface: null, timer: null, drag: null,
  split: { dataset: "circles", layers: "4,4", activation: defaultActivation, state: null, losses: [], points: [], mine: [],
           grid: null, accuracy: null, status: "running", task: "classification", curve: null },
};

// The split tab's two tasks (lesson 001: regression vs classification), each with the data and the
// network it starts with; regression's is the slides' Keras example, Dense(3, relu), Dense(3, relu), Dense(1).
const TASK_SETUP = {
  classification: { dataset: "circles", layers: "4,4", activation: defaultActivation,
    title: "Split the data: a small network learns to separate two classes",
    says: "Classification: will it be class 0 or class 1? The output is a probability (sigmoid), the loss binary cross-entropy." },
  // layers and activation: the server's (engine/choices.py REGRESSION_START), on the task's menu
  regression: { dataset: "wave", layers: $("task").options[1].dataset.layers, activation: $("task").options[1].dataset.activation,
    title: "Fit a curve: a small network learns a number for each x",
    says: "Regression: what number goes with this x? The output is the number itself, the loss the mean squared error (MSE). Hidden layers 3,3 with ReLU and one output, as the slides' Keras example",
    keras: "Dense(3, input_dim=2, activation='relu'), Dense(3, activation='relu'), Dense(1)",
    differs: "here one input x (input_dim=1) so the curve can be drawn, and plain SGD instead of the slides' Adam." },
};

// whether the split's data belongs to its task (the data menu marks each generated set with its task)
function datasetFits(split) {
  const option = [...$("dataset").options].find((o) => o.value === split.dataset);
  return Boolean(option) && (!option.dataset.task || option.dataset.task === split.task);
}

function parseData(text) {
  const pairs = text.split(",").map((p) => p.split(":").map(Number));
  return { x: pairs.map((p) => p[0]), y: pairs.map((p) => p[1]) };
}
function parseRace(text) {
  return text.split(",").map((r) => { const [optimizer, lr] = r.split(":"); return { optimizer, lr: Number(lr) }; });
}
function problemName() { return S.tab === "surface" ? S.problem : S.tab; }
const lineData = () => S.data || S.lineExample;
const top = (s) => s, splitState = (s) => s.split, splitting = (s) => s.tab === "split";

// The address: what a lesson link carries (read in this order: the start belongs to the problem).
const URL_STATE = [
  at("tab", top, "tab"),
  at("optimizer", top, "optimizer"),
  at("lr", top, "lr", { parse: positive }),
  at("problem", top, "problem", { when: (s) => s.tab === "surface" }),
  at("momentum", top, "momentum", { parse: positive, when: (s) => s.optimizer === "momentum" }),
  { key: "start", parse: numbers, show: (v) => v.map((x) => x.toFixed(3)).join(","),
    get: (s) => s.starts[problemName()], set: (s, v) => { s.starts[problemName()] = v; } },
  at("data", top, "data", { parse: parseData, show: (d) => d.x.map((x, i) => `${x.toFixed(2)}:${d.y[i].toFixed(2)}`).join(",") }),
  { key: "race", parse: parseRace, show: (race) => race.map((r) => `${r.optimizer}:${r.lr}`).join(","),
    get: (s) => (s.race.length ? s.race : null), set: (s, v) => { s.race = v; } },
  at("dataset", splitState, "dataset", { when: splitting }),
  at("layers", splitState, "layers", { when: splitting }),
  at("activation", splitState, "activation", { when: splitting }),
  // read after the data: a link that names only the task gets that task's own data
  { key: "task", when: splitting, parse: (v) => (TASK_SETUP[v] ? v : null), get: (s) => s.split.task,
    set: (s, v) => { s.split.task = v; if (!datasetFits(s.split)) s.split.dataset = TASK_SETUP[v].dataset; } },
];
// Each exercise has its own settings: its defaults the first time, what the class chose for it
// when it comes back. A rate that suits one (1.05 to show divergence on the curve) is never
// carried into the next (the line fit would blow up; the network would not learn).
const TAB_DEFAULTS = {
  parabola: { lr: 0.08, optimizer: defaultOptimizer, momentum: 0.9 },
  line_fit: { lr: 0.08, optimizer: defaultOptimizer, momentum: 0.9 },
  surface: { lr: 0.08, optimizer: defaultOptimizer, momentum: 0.9 },
  split: { lr: 0.3, optimizer: defaultOptimizer, momentum: 0.9 },
};
const TAB_SETTINGS = Object.keys(TAB_DEFAULTS.parabola);
const tabSettings = {};

readURL(URL_STATE.slice(0, 1), S);  // the tab first: its defaults, then what the address sets
if (!(S.tab in TAB_DEFAULTS)) S.tab = "parabola";
Object.assign(S, TAB_DEFAULTS[S.tab]);
readURL(URL_STATE, S);

function switchTab(tab) {
  if (tab === S.tab) return;
  tabSettings[S.tab] = Object.fromEntries(TAB_SETTINGS.map((k) => [k, S[k]]));
  S.tab = tab;
  Object.assign(S, TAB_DEFAULTS[tab], tabSettings[tab]);
  $("numbers").replaceChildren();  // the last tab's answer is gone until this one's arrives
  $("verdict").textContent = "";
  setup();
}

const split = new SplitTab(S, { render: () => render(), stop: () => stop() });

function saveURL() {
  writeURL(URL_STATE, S);
}

// --- runs from the server -----------------------------------------------------------------

function runSpecs() {
  const current = { optimizer: S.optimizer, lr: S.lr };
  return S.tab === "surface" && S.race.length ? S.race : [current];
}

async function fetchRuns(steps = MAX_STEPS) {
  const problem = problemName();
  const body = (spec) => ({
    problem, optimizer: spec.optimizer, learning_rate: spec.lr, momentum: S.momentum, steps,
    start: S.starts[problem] || null, data: problem === "line_fit" ? lineData() : null,
  });
  const generation = S.generation;
  try {
    const runs = await Promise.all(runSpecs().map(async (spec, i) => ({
      ...spec, colour: COLOURS[i % COLOURS.length], ...(await sendJSON("POST", "/api/descent/run", body(spec))),
    })));
    if (generation !== S.generation) return;  // answers for a setup since replaced are dropped
    S.runs = runs;
    $("verdict").textContent = "";
  } catch (err) {
    if (generation !== S.generation) return;
    S.runs = [];
    $("verdict").textContent = err.message;
  }
}

async function loadSurface() {
  const problem = problemName(), generation = S.generation;
  const surface = await sendJSON("POST", "/api/descent/surface", { problem, data: problem === "line_fit" ? lineData() : null });
  if (generation === S.generation) S.surface = surface;
}

async function setup() {
  S.generation = (S.generation || 0) + 1;
  const generation = S.generation;
  stop();
  S.n = 0;
  saveURL();
  syncControls();
  if (S.tab === "split") { split.reset(); return render(); }
  S.runs = [];  // steps asked for until this setup's runs arrive are queued
  S.queued = 0;
  await Promise.all([loadSurface(), fetchRuns()]);
  if (generation !== S.generation) return;
  const longest = Math.max(...S.runs.map((r) => r.path.length - 1), 0);
  S.n = Math.min(S.queued, longest);
  S.queued = 0;
  render();
}

// --- controls -------------------------------------------------------------------------------

async function step() {
  if (S.tab === "split") return split.step(1);
  if (!S.runs.length) { S.queued += 1; return; }  // still loading: taken when the runs arrive
  const longest = Math.max(...S.runs.map((r) => r.path.length - 1), 0);
  if (S.n >= longest) {
    const growing = S.runs.some((r) => r.status === "running" && r.path.length - 1 === r.steps && r.steps < 10000);
    if (!growing) return stop();
    await fetchRuns(Math.min(10000, longest * 4));
  }
  S.n += 1;
  render();
}

function run() {
  if (S.timer) return stop();
  $("run").textContent = t("PAUSE");
  S.timer = setInterval(() => (S.tab === "split" ? split.step(5) : step()), S.tab === "split" ? 120 : 160);
}

function stop() {
  clearInterval(S.timer);
  S.timer = null;
  $("run").textContent = t("RUN");
}

function reset() {
  stop();
  S.n = 0;
  if (S.tab === "split") split.reset();
  render();
}

function setLearningRate(lr) {
  S.lr = Number(Math.min(100, Math.max(1e-4, lr)).toPrecision(3));
  $("lr-number").value = S.lr;
  $("lr-slider").value = Math.log10(S.lr);
  if (S.tab === "split") { saveURL(); return; }
  setup();
}

function syncControls() {
  document.querySelectorAll("[data-tab]").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === S.tab)));
  $("problem-row").hidden = S.tab !== "surface";
  $("race-row").hidden = S.tab !== "surface";
  $("split-row").hidden = S.tab !== "split";
  $("example").hidden = S.tab !== "line_fit" || !S.data;
  $("optimizer-row").hidden = S.tab === "split";
  $("momentum-row").hidden = S.tab === "split" || S.optimizer !== "momentum";
  $("class-row").hidden = S.split.dataset !== "mine" || S.split.task === "regression";
  $("problem").value = S.problem;
  $("optimizer").value = S.optimizer;
  $("momentum").value = S.momentum;
  $("lr-number").value = S.lr;
  $("lr-slider").value = Math.log10(S.lr);
  $("dataset").value = S.split.dataset;
  $("layers").value = S.split.layers;
  $("activation").value = S.split.activation;
  $("task").value = S.split.task;
  for (const o of $("dataset").options) o.hidden = Boolean(o.dataset.task) && o.dataset.task !== S.split.task;
  $("split-task").hidden = S.tab !== "split";
  const task = TASK_SETUP[S.split.task];  // the slides' code as it is, around the words
  $("split-task").textContent = task.keras ? `${t(task.says)} ${task.keras}; ${t(task.differs)}` : t(task.says);
  const raceList = $("race");
  raceList.replaceChildren(...S.race.map((r, i) => {
    const li = document.createElement("li");
    li.style.setProperty("--run", COLOURS[i]);
    li.textContent = `${r.optimizer} · lr ${r.lr} `;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "✕";
    remove.setAttribute("aria-label", t("Remove run {n}", undefined, { n: i + 1 }));
    remove.addEventListener("click", () => { S.race.splice(i, 1); setup(); });
    li.append(remove);
    return li;
  }));
  const p = S.problems[problemName()];
  // the server names its problems in English: the title is the key of its translation
  $("formula").textContent = S.tab === "split" ? t(TASK_SETUP[S.split.task].title)
    : p ? `${t(p.title)}: ${p.formula}` : "";
}

// --- drawing --------------------------------------------------------------------------------

let frame = null;

function render() {
  $("counter").textContent = S.n;
  if (S.tab === "split") frame = drawSplit(S);
  else if (S.surface && S.runs.length) frame = drawExercise(S, S.problems[problemName()].view, lineData());
}

// --- pointer: drag the line's points or the start point; add points to split ----------------

const canvasPoint = (e) => { const r = $("main-plot").getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };

$("main-plot").addEventListener("pointerdown", (e) => {
  if (!frame) return;
  const [px, py] = canvasPoint(e);
  const near = (x, y) => Math.hypot(frame.x(x) - px, frame.y(y) - py) < 16;
  if (S.tab === "split" && S.split.dataset === "mine") {
    const [x, y] = frame.invert(px, py);
    S.split.mine.push([Number(x.toFixed(3)), Number(y.toFixed(3)), Number($("click-class").value)]);
    return split.reset();
  }
  if (S.tab === "line_fit") {
    const d = lineData();
    const i = d.x.findIndex((x, k) => near(x, d.y[k]));
    if (i >= 0) S.drag = { kind: "point", i };
  } else if (S.tab === "surface" && S.runs.length && near(...S.runs[0].path[0])) {
    S.drag = { kind: "start" };
  }
  if (S.drag) $("main-plot").setPointerCapture(e.pointerId);
});
$("main-plot").addEventListener("pointermove", (e) => {
  if (!S.drag) return;
  const [x, y] = frame.invert(...canvasPoint(e));
  if (S.drag.kind === "point") {
    S.data = structuredClone(lineData());
    S.data.x[S.drag.i] = Math.max(0, x);
    S.data.y[S.drag.i] = y;
  } else {
    S.starts[problemName()] = [x, y];
    S.runs.forEach((r) => { r.path = [[x, y]]; r.loss = [r.loss[0]]; r.gradient = [r.gradient[0]]; });
  }
  render();
});
$("main-plot").addEventListener("pointerup", () => { if (S.drag) { S.drag = null; setup(); } });

// --- wiring ---------------------------------------------------------------------------------

document.querySelectorAll("[data-tab]").forEach((b) => b.addEventListener("click", () => switchTab(b.dataset.tab)));
$("problem").addEventListener("change", (e) => { S.problem = e.target.value; setup(); });
$("optimizer").addEventListener("change", (e) => { S.optimizer = e.target.value; setup(); });
$("momentum").addEventListener("change", (e) => { S.momentum = Math.min(0.99, Math.max(0, Number(e.target.value))); setup(); });
$("lr-slider").addEventListener("input", (e) => setLearningRate(10 ** Number(e.target.value)));
$("lr-number").addEventListener("change", (e) => setLearningRate(Number(e.target.value)));
$("step").addEventListener("click", step);
$("run").addEventListener("click", run);
$("reset").addEventListener("click", reset);
$("example").addEventListener("click", () => { S.data = null; setup(); });
$("add-run").addEventListener("click", () => {
  if (S.race.length < 4) S.race.push({ optimizer: S.optimizer, lr: S.lr });
  setup();
});
$("task").addEventListener("change", (e) => {  // each task starts with its own data and network
  Object.assign(S.split, { task: e.target.value, mine: [] }, TASK_SETUP[e.target.value]);
  setup();
});
for (const id of ["dataset", "layers", "activation"]) {
  $(id).addEventListener("change", (e) => { S.split[id] = e.target.value; setup(); });
}
document.addEventListener("keydown", (e) => {
  if (!isShortcut(e)) return;
  if (e.key === " ") { e.preventDefault(); step(); }
  else if (e.key === "r" || e.key === "R") reset();
  else if (e.key === "ArrowUp" || e.key === "ArrowRight") { e.preventDefault(); setLearningRate(S.lr * 10 ** 0.1); }
  else if (e.key === "ArrowDown" || e.key === "ArrowLeft") { e.preventDefault(); setLearningRate(S.lr / 10 ** 0.1); }
});
window.addEventListener("resize", render);

getJSON("/api/descent/problems").then(({ problems, line_example }) => {
  for (const p of problems) S.problems[p.name] = p;
  S.lineExample = line_example;
  setup();
});

// --- the lab report: the setup, where it got to, the plot and the loss curve, with the lesson QR ---

reportButtons(document.querySelector(".descent-controls .buttons"), () => {
  const settings = [["tab", S.tab], [t("Learning rate"), S.lr], [t("Step"), S.n]];
  if (S.tab !== "split") settings.push([t("Optimizer"), S.optimizer]);
  for (const [dt, dd] of [...document.querySelectorAll("#numbers dt")].map((d) => [d.textContent, d.nextElementSibling.textContent])) settings.push([dt, dd]);
  if ($("verdict").textContent) settings.push([t("verdict"), $("verdict").textContent]);
  return saveReport("descent", { title: $("formula").textContent || t("Gradient descent"), settings,
    parts: [{ canvas: $("main-plot"), title: "" }, { canvas: $("loss-plot"), title: t("Loss per step") }] });
});
