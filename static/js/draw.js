// Draw page: strokes on a canvas -> PNG frames over /ws/draw -> bars, verdict, what the network sees.
import { getJSON, LiveSocket, modelOption, pageConfig } from "./api.js";
import { t } from "./i18n.js";
import { DrawingPad } from "./pad.js";
import { clearCanvas, createBars, fitToParent, paintGrey, readsGrey } from "./render.js";
import { numbersFold } from "./pixel-numbers.js";
import { percent } from "./format.js";
import { isShortcut } from "./keys.js";
import { DEFAULTS, isIdentity, transformFrame } from "./robust.js";
import { $ } from "./dom.js";
import { at, readURL, writeURL } from "./url-state.js";

const STORE_KEY = "neuronlab.draw";
const config = pageConfig();

const state = {
  model: config.defaultModel,
  labels: [],
  sending: false,
  dirty: false,
  bars: null,
};
const seenNumbers = numbersFold($("seen-numbers"), { across: 28 });  // what it saw, as 0-255 numbers
// The address: which network reads the drawing (?model=; the default one without it).
const URL_STATE = [at("model", (s) => s, "model", { parse: (v) => v || null })];
readURL(URL_STATE, state);
const pad = new DrawingPad($("pad"), { onChange: (ended) => { if (ended) save(); changed(ended); } });

function changed(strokeEnded = false) {
  state.dirty = true;
  state.announceNext = state.announceNext || strokeEnded;
  if (pad.empty) showEmpty();
  pump();
}

const undo = () => pad.undo();
const clearAll = () => pad.clear();

function save() {
  localStorage.setItem(STORE_KEY, JSON.stringify({ strokes: pad.strokes, pen: pad.pen }));
}

function restore() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE_KEY) || "{}");
    if (Array.isArray(saved.strokes)) pad.strokes = saved.strokes;
    if (saved.pen) pad.pen = saved.pen;
  } catch { /* a damaged entry is ignored */ }
  $("pen").value = pad.pen;
  $("pen-value").textContent = pad.pen;
}

// --- frames to the server (latest wins: at most one frame in flight from this side) -------

function pump() {
  if (!state.dirty || state.sending || !socket.ready || pad.empty) return;
  state.dirty = false;
  state.sending = true;
  const change = robust();
  pad.frameBlob(change && ((frame, paint) => { transformFrame(frame, paint, change); showPreview(frame); })).then((blob) => {
    if (!socket.send(blob)) state.sending = false;
  });
}

// --- try to break it: the frame sent turned, moved, thickened, blurred or noisy ------------

const ROBUST = Object.keys(DEFAULTS);

function robust() {
  const t = Object.fromEntries(ROBUST.map((k) => [k, Number($(`r-${k}`).value)]));
  ROBUST.forEach((k) => { $(`r-${k}`).nextElementSibling.textContent = t[k]; });
  return isIdentity(t) ? null : t;
}

function showPreview(frame) {
  const ctx = $("r-preview").getContext("2d");
  ctx.drawImage(frame, 0, 0, $("r-preview").width, $("r-preview").height);
}

for (const k of ROBUST) $(`r-${k}`).addEventListener("input", () => changed());
$("r-reset").addEventListener("click", () => { ROBUST.forEach((k) => { $(`r-${k}`).value = DEFAULTS[k]; }); changed(); });

// --- results -------------------------------------------------------------------------------

function showEmpty() {
  $("verdict").dataset.state = "empty";
  $("verdict-label").textContent = t("draw.title");
  $("verdict-confidence").textContent = "";
  $("r-answer").textContent = "…";
  state.bars && state.bars.update(null);
  for (const id of ["seen", "step-ink", "step-crop", "step-fit", "step-center"]) clearCanvas($(id));
  seenNumbers.show(null);
}

function showPrediction(message) {
  const probs = message.probabilities;
  $("verdict").dataset.state = "prediction";
  $("verdict-label").textContent = message.prediction;
  $("verdict-confidence").textContent = percent(message.confidence);
  $("r-answer").textContent = `${message.prediction} · ${percent(message.confidence)}`;  // beside the sliders
  state.bars.update(probs);
  paintGrey($("seen"), message.input);
  seenNumbers.show(message.input);
  showSteps(message.steps, message.input);
  if (state.announceNext) {
    $("announce").textContent = t("draw.reads", "", { guess: message.prediction, confidence: percent(message.confidence) });
    state.announceNext = false;
  }
}

function showSteps(steps, input) {
  const ink = paintGrey($("step-ink"), steps.ink);
  const [l, top, r, b] = steps.bbox;
  ink.strokeStyle = "#f0a400";
  ink.lineWidth = Math.max(1, ink.canvas.width / 40);
  ink.strokeRect(l, top, r - l, b - top);
  paintGrey($("step-crop"), steps.cropped);
  paintGrey($("step-fit"), steps.fitted);
  $("step-fit-caption").textContent = `${t("draw.step3")} (${steps.fitted.width}×${steps.fitted.height})`;
  const ctx = paintGrey($("step-center"), input);
  const [cx, cy] = steps.center_of_mass;
  ctx.fillStyle = "#f0a400";
  ctx.fillRect(Math.round(cx), 0, 1, 28);
  ctx.fillRect(0, Math.round(cy), 28, 1);
  for (const id of ["step-ink", "step-crop", "step-fit", "step-center"]) fitToParent($(id));
}

function onMessage(message) {
  if (message.type === "ready") {
    state.labels = message.labels;
    state.bars = createBars($("bars"), message.labels);
    state.bars.update(null);
    $("draw-title").textContent = t(message.task === "digits" ? "draw.title" : "draw.other");
    return;
  }
  if (message.frame !== undefined) { state.sending = false; }
  $("status").textContent = message.type === "error" ? message.message : "";
  if (pad.empty) showEmpty();
  else if (message.type === "prediction") showPrediction(message);
  else if (message.type === "empty") showEmpty();
  pump();
}

const socket = new LiveSocket(`/ws/draw?model=${encodeURIComponent(state.model)}`, {
  onMessage,
  onState: (s) => { if (s === "closed") { state.sending = false; $("status").textContent = t("draw.reconnecting"); } },
  onOpen: () => { $("status").textContent = ""; state.dirty = true; pump(); },
});

// --- controls ------------------------------------------------------------------------------

async function loadModels() {
  const { models } = await getJSON("/api/models");
  const select = $("model");
  for (const m of models.filter(readsGrey)) {
    const accuracy = m.test_accuracy ? ` · ${(m.test_accuracy * 100).toFixed(1)}%` : "";
    const option = modelOption(m, m.id === state.model, accuracy);
    select.append(option);
  }
  select.addEventListener("change", () => {
    state.model = select.value;
    writeURL(URL_STATE, state);
    socket.send({ model: state.model });
    state.dirty = true;
    state.sending = false;
    pump();
  });
}

$("pen").addEventListener("input", (e) => {
  pad.pen = Number(e.target.value);
  $("pen-value").textContent = pad.pen;
  save();
});
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearAll);
document.addEventListener("keydown", (e) => {
  if (!isShortcut(e)) return;
  if ("cCrR".includes(e.key) && e.key.length === 1) { clearAll(); e.preventDefault(); }
  if (e.key === "u" || e.key === "U" || (e.key === "z" && (e.ctrlKey || e.metaKey))) { undo(); e.preventDefault(); }
});
restore();
pad.resize();
showEmpty();
loadModels().catch((err) => { $("status").textContent = `${t("Could not list the models:")} ${err.message}`; });
