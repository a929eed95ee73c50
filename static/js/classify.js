// Classify photos: files, drops, pastes and webcam frames -> POST /api/predict (with steps) and
// POST /api/saliency -> one card each: guess, top probabilities, preprocessing steps, where it looked.
import { t } from "./i18n.js";
import { getJSON, modelOption, pageConfig, postForm } from "./api.js";
import { modelName, refusal } from "./server-text.js";
import { frameBlob as grabFrame, startCamera } from "./camera.js";
import { decodeImage, fitToParent, paintColour, paintGrey } from "./render.js";
import { numbersFold } from "./pixel-numbers.js";
import { percent } from "./format.js";
import { isShortcut } from "./keys.js";
import { $ } from "./dom.js";
import { at, readURL, writeURL } from "./url-state.js";

const config = pageConfig();
const state = {
  model: config.defaultModel, stream: null, liveBusy: false, models: [],
  sure: 40,  // below this %, say "not sure"
};
// The address: the model and how sure a guess must be (a lesson link reproduces both).
const URL_STATE = [
  at("model", (s) => s, "model", { parse: (v) => v || null }),
  at("sure", (s) => s, "sure", { parse: (v) => Math.min(95, Math.max(0, Number(v) || 0)) }),
];
readURL(URL_STATE, state);

const post = (path, blob, model = state.model) => postForm(path, {
  image: blob, model, steps: path === "/api/predict" ? "true" : null,
  min_confidence: path === "/api/predict" ? String(state.sure / 100) : null,
});
// A model's card: from the list, else asked for (a model this browser's list does not hold, or a
// photo read before the list arrived); null for a model no longer on this server.
const cards = new Map();
function cardOf(id) {
  const listed = state.models.find((m) => m.id === id);
  if (listed) return Promise.resolve(listed);
  if (!cards.has(id)) cards.set(id, getJSON(`/api/models/${encodeURIComponent(id)}`).catch(() => null));
  return cards.get(id);
}
const nameOf = async (id) => {
  const card = await cardOf(id);
  return card ? modelName(card) : t("a model no longer on this server");
};

// The headline of an answer: the guess and its probability, or, below the chosen confidence,
// "Not sure" with the best guesses: the network does not pretend.
function verdict(result) {
  const [best] = result.top;
  if (result.sure === false) {
    const maybe = result.top.slice(0, 3).map((g) => g.label).join(" / ");
    return { text: t("Not sure: maybe {guesses}", undefined, { guesses: maybe }), sure: false };
  }
  return { text: `${best.label} · ${percent(best.probability)}`, sure: true };
}

// A card for one photo, read by `model`; `card` given: the same photo read again by another model.
async function classify(blob, name, model = state.model, card = null) {
  if (!card) {
    card = document.createElement("li");
    $("cards").prepend(card);
  }
  card.className = "card";
  card.innerHTML = '<div class="card-head"><strong class="guess">…</strong><span class="name"></span></div>';
  card.querySelector(".name").textContent = name;
  try {
    const [result, saliency] = await Promise.all([post("/api/predict", blob, model), post("/api/saliency", blob, model)]);
    fillCard(card, blob, result, saliency, await nameOf(result.model));
  } catch (err) {
    card.classList.add("failed");
    card.querySelector(".guess").textContent = "✗";
    const p = document.createElement("p");
    p.className = "status";
    p.textContent = refusal(err);  // in the reader's language, by the refusal's code
    card.append(p, readWith(card, blob, name, model));
  }
}

// "Read it with": the same photo by another model (a digit on paper, a garment, a project's).
function readWith(card, blob, name, current, currentName = "—") {
  const label = document.createElement("label");
  label.className = "read-with";
  label.textContent = `${t("Read it with")} `;
  const select = document.createElement("select");
  const listed = state.models.some((m) => m.id === current);
  for (const m of state.models) select.append(modelOption(m, m.id === current));
  if (!listed) select.prepend(new Option(currentName, current, true, true));  // (the list has not arrived)
  select.addEventListener("change", () => classify(blob, name, select.value, card));
  label.append(select);
  return label;
}

function fillCard(card, blob, result, saliency, model) {
  const { text, sure } = verdict(result);
  card.querySelector(".guess").textContent = text;
  card.classList.toggle("unsure", !sure);
  card.setAttribute("aria-label", `${card.querySelector(".name").textContent}: ${text}`);
  const by = document.createElement("p");
  by.className = "read-by";
  // the model's name, whole on hover: a long one is cut with "…" and never widens the card
  const [before, after = ""] = t("Read by: {model}").split("{model}");
  const named = document.createElement("span");
  named.className = "model-name";
  named.textContent = named.title = model;
  by.append(before, named, after);
  const top = document.createElement("ol");
  top.className = "top3";
  for (const g of result.top) {
    const li = document.createElement("li");
    li.textContent = `${g.label} ${percent(g.probability)}`;
    li.style.setProperty("--p", String(g.probability));
    top.append(li);
  }
  const steps = document.createElement("div");
  steps.className = "pipeline";
  const original = new Image();
  original.src = URL.createObjectURL(blob);
  original.alt = t("The photo");
  steps.append(figure(t("photo"), original));
  const colour = !Array.isArray(result.input) || Array.isArray(result.input[0][0]); // (3, H, W): a photo model reads colour
  const big = colour && !Array.isArray(result.input); // the ImageNet network's 224x224: no channel strips
  if (!big) steps.append(figure(t(colour ? "greyscale" : "ink found"), canvasOf(result.steps.ink)));
  steps.append(figure(t(colour ? "centre square" : "cropped"), canvasOf(result.steps.cropped)));
  if (colour) {
    if (!big) ["red channel", "green channel", "blue channel"].forEach((name, c) => steps.append(figure(t(name), colourCanvas(result.input, c))));
    steps.append(figure(t("the network's input"), colourCanvas(result.input)));
  } else {
    steps.append(figure(t("the network's input"), canvasOf(result.input.map((row) => row.map((v) => Math.round(v * 255))))));
  }
  const looked = t(saliency.method === "grad-cam" ? "where it looked ({label}, Grad-CAM)" : "where it looked ({label})",
    undefined, { label: saliency.target_label });
  steps.append(figure(looked, overlay(result.steps.ink, saliency.overlay)));
  by.append(" ", readWith(card, blob, card.querySelector(".name").textContent, result.model, model));
  card.append(by, top, steps);
  numbersFold(card, { across: 14 }).show(result.input);  // what the network read, as its 0-255 numbers
  requestAnimationFrame(() => card.querySelectorAll(".pipeline canvas").forEach(fitToParent));
}

function figure(caption, element) {
  const f = document.createElement("figure");
  const frame = document.createElement("span");
  frame.className = "frame";
  frame.append(element);
  const c = document.createElement("figcaption");
  c.textContent = caption;
  f.append(frame, c);
  return f;
}

function colourCanvas(chw, only = null) {
  const canvas = document.createElement("canvas");
  canvas.className = "pixelated";
  paintColour(canvas, chw, only);
  return canvas;
}

function canvasOf(value) {
  const canvas = document.createElement("canvas");
  canvas.className = "pixelated";
  paintGrey(canvas, value);
  return canvas;
}

// The ink map in grey with the saliency in orange on top (brighter orange = it mattered more).
function overlay(inkValue, heatValue) {
  const canvas = document.createElement("canvas");
  const ink = decodeImage(inkValue), heat = decodeImage(heatValue);
  canvas.width = heat.width;
  canvas.height = heat.height;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(heat.width, heat.height);
  for (let y = 0; y < heat.height; y++) for (let x = 0; x < heat.width; x++) {
    const i = y * heat.width + x;
    const g = ink.data[Math.floor((y * ink.height) / heat.height) * ink.width + Math.floor((x * ink.width) / heat.width)] * 0.5;
    const h = heat.data[i] / 255;
    img.data.set([g + h * (230 - g), g + h * (159 - g), g * (1 - h), 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

function addFiles(files) {
  for (const file of files) classify(file, file.name);
}

// --- inputs --------------------------------------------------------------------------------------

$("files").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); addFiles(e.dataTransfer.files); });
document.addEventListener("paste", (e) => {
  const files = [...e.clipboardData.items].filter((i) => i.kind === "file").map((i) => i.getAsFile());
  if (files.length) addFiles(files);
});

const frameBlob = () => grabFrame($("video"));

$("camera-start").addEventListener("click", async () => {
  try {
    state.stream = await startCamera($("video"));
  } catch (err) {
    $("classify-error").textContent = `${t("The webcam is not available:")} ${err.message}`;
    return;
  }
  for (const id of ["video", "capture", "live-row"]) $(id).hidden = false;
  $("camera-start").hidden = true;
});
const capture = async () => { if (state.stream) classify(await frameBlob(), `webcam ${new Date().toLocaleTimeString()}`); };
$("capture").addEventListener("click", capture);

async function liveLoop() {
  if (!$("live").checked || !state.stream) return;
  if (!state.liveBusy) {
    state.liveBusy = true;
    try {
      const result = await post("/api/predict", await frameBlob());
      const { text, sure } = verdict(result);
      $("live-result").textContent = `${t("Live:")} ${text}`;
      $("live-result").classList.toggle("unsure", !sure);
    } catch (err) {
      $("live-result").textContent = `${t("Live:")} ${refusal(err)}`;
    } finally {
      state.liveBusy = false;
    }
  }
  setTimeout(liveLoop, 100);  // the next frame as soon as this one is answered: 5 or more a second
}
$("live").addEventListener("change", liveLoop);

$("clear-cards").addEventListener("click", () => $("cards").replaceChildren());
document.addEventListener("keydown", (e) => {
  if (!isShortcut(e)) return;
  if (e.key === " " && state.stream) { e.preventDefault(); capture(); }
  if (e.key === "c" || e.key === "C") $("cards").replaceChildren();
});

$("sure").value = String(state.sure);
const showSure = () => { $("sure-value").textContent = `${state.sure}%`; };
showSure();
$("sure").addEventListener("input", (e) => {
  state.sure = Number(e.target.value);
  showSure();
  writeURL(URL_STATE, state);
});

getJSON("/api/models").then(async ({ models }) => {
  // a model in the address that this browser's list does not hold (another browser's, as in a
  // lesson link) is kept while the server has it
  const asked = !state.model || models.some((m) => m.id === state.model) ? null : await cardOf(state.model);
  state.models = asked ? [...models, asked] : models;
  if (!asked && !models.some((m) => m.id === state.model)) state.model = models.find((m) => m.default)?.id ?? models[0]?.id;
  for (const m of state.models) $("model").append(modelOption(m, m.id === state.model));
  $("model").addEventListener("change", (e) => {
    state.model = e.target.value;
    writeURL(URL_STATE, state);
  });
});
