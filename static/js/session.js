// The teacher's class session: start one, show the join code and QR code, and follow the gallery
// live over /ws/sessions/{code}. The teacher's key stays in this browser (localStorage).
import { t, tn } from "./i18n.js";
import { download, getJSON, LiveSocket, modelOption, pageConfig, sendJSON } from "./api.js";
import { modelName } from "./server-text.js";
import { paintGrey, readsGrey } from "./render.js";
import { percent } from "./format.js";
import { isShortcut } from "./keys.js";
import { $ } from "./dom.js";
import { studentsAddress } from "./students-address.js";
import { at, readURL, writeURL } from "./url-state.js";

const STORE = "neuronlab.session";
const S = { code: null, key: null, socket: null, labels: [], drawings: new Map(), reveal: true, models: [], ended: false,
  projects: [], shared: null, sharedName: "" };
// The address: the session's code (never its teacher's key: addresses end up in access logs).
const URL_STATE = [at("code", (s) => s, "code", { parse: (v) => v || null })];

const teacher = (method, path, body) => sendJSON(method, `/api/sessions/${S.code}${path}`, body, { "X-Teacher-Key": S.key });

async function init() {
  const { models } = await getJSON("/api/models");
  S.models = models;
  for (const m of models.filter(readsGrey)) $("model").append(modelOption(m, m.id === pageConfig().defaultModel));
  const saved = JSON.parse(localStorage.getItem(STORE) || "null");
  const wanted = readURL(URL_STATE, { code: null }).code;
  if (saved && (!wanted || wanted.toUpperCase() === saved.code)) open(saved.code, saved.key);
  else if (wanted) {
    const info = await getJSON(`/api/sessions/${encodeURIComponent(wanted)}`).catch(() => null);
    $("start-error").textContent = info?.ended
      ? t("Session {code} has ended. Start a new one for the next class.", undefined, { code: info.code })
      : t("This browser does not hold the teacher's key of session {code}: start a new one.", undefined, { code: wanted });
  }
}

// The model's name (a model fine-tuned by the class is new: the list is asked again), never its id.
async function showModel(id) {
  if (!S.models.some((m) => m.id === id)) S.models = (await getJSON("/api/models").catch(() => ({ models: S.models }))).models;
  const model = S.models.find((m) => m.id === id);
  $("model-name").textContent = `${t("Model")}: ${model ? modelName(model) : t("a model no longer on this server")}`;
  $("model-name").title = model ? modelName(model) : id;
}

$("start").addEventListener("click", async () => {
  try {
    const session = await sendJSON("POST", "/api/sessions", { model: $("model").value });
    localStorage.setItem(STORE, JSON.stringify({ code: session.code, key: session.teacher_key }));
    open(session.code, session.teacher_key);
  } catch (err) {
    $("start-error").textContent = err.message;
  }
});

function open(code, key) {
  Object.assign(S, { code, key });
  writeURL(URL_STATE, S);
  $("start-panel").hidden = true;
  $("session-panel").hidden = false;
  $("code").textContent = code;
  showJoinAddress(code);
  // the key goes in the first message, never in the address (addresses end up in access logs)
  S.socket = new LiveSocket(`/ws/sessions/${code}`, { onMessage, onOpen: () => S.socket.send({ key }) });
  loadProjects();
}

// --- a project shown to the class (read-only on the students' pages) -----------------------------

// This browser's own projects (its owner token): only those can be shown.
async function loadProjects() {
  try {
    S.projects = (await getJSON("/api/projects")).projects;
  } catch (err) {
    $("share-status").textContent = err.message;
    return;
  }
  const pick = $("share-pick");
  pick.replaceChildren(...S.projects.map((p) => new Option(`${p.name} (${tn(p.samples, "{n} photo", "{n} photos")})`, p.id)));
  if (!S.projects.length) pick.append(new Option(t("No projects yet: make one on Teach"), ""));
  pick.disabled = $("share").disabled = !S.projects.length || S.ended;
  showShared();
}

function showShared() {
  const p = S.projects.find((x) => x.id === S.shared);
  if (S.shared && p) { S.sharedName = p.name; $("share-pick").value = p.id; }
  $("share-status").textContent = S.shared ? t("Shown to the class: {name}", undefined, { name: S.sharedName }) : "";
  $("unshare").hidden = !S.shared || S.ended;
}

async function share(project) {
  try {
    const answer = await teacher("PUT", "/project", { project });
    S.shared = answer.project;
    S.sharedName = answer.shown?.name || "";
    showShared();
  } catch (err) {
    $("share-status").textContent = err.message;
  }
}

$("share").addEventListener("click", () => { if ($("share-pick").value) share($("share-pick").value); });
$("unshare").addEventListener("click", () => share(null));

// The address students type (students-address.js: the one lesson links and reports give too).
async function showJoinAddress(code) {
  const { origin, others, warning } = await studentsAddress();
  const url = `${origin}/join`;
  $("join-url").textContent = url.replace(/^https?:\/\//, "");
  $("join-other").textContent = others.length ? `${t("or")} ${others.map((u) => u.replace(/^https?:\/\//, "") + "/join").join(", ")}` : "";
  $("qr").src = `/api/qr.svg?text=${encodeURIComponent(`${url}?code=${code}`)}`;
  $("join-warning").hidden = !warning;
  $("join-warning").textContent = warning;
  $("join-warning").dataset.short = t("⚠ Students cannot reach this address");  // the corner badge says only this
}

function onMessage(e) {
  if (e.type === "error") {
    S.socket.close();
    localStorage.removeItem(STORE);
    $("session-panel").hidden = true;
    $("start-panel").hidden = false;
    $("start-error").textContent = e.message;
  }
  if (e.type === "snapshot") {
    Object.assign(S, { labels: e.labels, reveal: e.reveal });
    S.drawings = new Map(e.drawings.map((d) => [d.id, d]));
    $("reveal").checked = e.reveal;
    $("reveal").disabled = false;  // usable once the server's state is known: a click before would be undone by it
    showStudents(S.students = e.students);
    showModel(e.model_id);
    S.shared = e.project ?? null;
    showShared();
    if (e.finetune) say(fineTuneReport(e.finetune));
    if (e.ended) ended(e.kept);
    renderGallery();
  }
  if (e.type === "drawing") { S.drawings.set(e.drawing.id, e.drawing); renderGallery(); }
  if (e.type === "reveal") { S.reveal = $("reveal").checked = e.reveal; renderGallery(); }
  if (e.type === "students") showStudents(S.students = e.count);
  if (e.type === "project" && !e.shared) { S.shared = null; showShared(); }
  if (e.type === "ended") {
    if (!e.kept) S.drawings.clear();  // deleted on the server too
    ended(e.kept);
    renderGallery();
  }
}

function showStudents(n) {
  $("students").textContent = tn(n, "{n} student joined", "{n} students joined");
  // once students are in, the join panel shrinks to a corner badge: the gallery gets the screen
  const compact = n > 0 && !S.joinOpen;
  $("session-panel").classList.toggle("joined", compact);
  $("join-size").hidden = n === 0;
  $("join-size").textContent = t(compact ? "Show the QR code" : "Make it small");
}

function say(text) { $("session-status").textContent = text; }

function fineTuneReport(r) {
  return t("Fine-tuned on {n} drawings in {s} s: the class's drawings read right {before} → {after}; other digits {rb} → {ra}.",
    undefined, { n: r.drawings, s: r.seconds, before: percent(r.class_accuracy_before), after: percent(r.class_accuracy_after),
      rb: percent(r.replay_accuracy_before), ra: percent(r.replay_accuracy_after) });
}

// An ended session invites nobody: no code, no QR code, no "students joined"; it says so and what
// became of the drawings (the students' pages are told at once, by the server).
function ended(kept) {
  S.ended = true;
  localStorage.removeItem(STORE);
  say(kept === false ? t("The session has ended: students can no longer draw. Their drawings were deleted.")
    : kept ? t("The session has ended: students can no longer draw. Their drawings are kept on this server.")
      : t("The session has ended. Students can no longer draw."));
  $("join-box").hidden = true;
  $("session-panel").classList.add("ended");
  for (const id of ["finetune", "clear-gallery", "end", "share", "share-pick"]) $(id).disabled = true;
  S.shared = null;
  showShared();
}

function renderGallery() {
  const only = $("misread-only").checked;
  const shown = [...S.drawings.values()].reverse().filter((d) => !only || d.misread);
  $("gallery").replaceChildren(...shown.map(tile));
  $("gallery-count").textContent = `(${S.drawings.size})`;
  $("gallery-empty").hidden = S.drawings.size > 0 || S.ended;
  $("dataset-count").textContent = [...S.drawings.values()].filter((d) => d.in_dataset).length;
}

function tile(d) {
  const li = document.createElement("li");
  // with the guesses hidden, nothing on the tile says right or wrong either
  li.className = "tile" + (!S.reveal ? "" : d.misread ? " misread" : d.misread === false ? " right" : "");
  const canvas = document.createElement("canvas");
  canvas.className = "pixelated";
  paintGrey(canvas, d.image);
  const name = document.createElement("span");
  name.className = "student";
  name.textContent = d.student;
  const guess = document.createElement("strong");
  guess.className = "tile-guess";
  guess.textContent = S.reveal ? `${d.guess} · ${percent(d.confidence)}` : "?";
  li.append(canvas, name, guess);
  if (d.label !== null) {
    const truth = document.createElement("span");
    truth.className = "truth";
    truth.textContent = `${S.reveal ? (d.misread ? "✗ " : "✓ ") : ""}${t("is {label}", undefined, { label: d.label })}`;
    const add = document.createElement("button");
    add.type = "button";
    add.className = "to-dataset";
    add.setAttribute("aria-pressed", String(d.in_dataset));
    add.textContent = t(d.in_dataset ? "in the dataset ✓" : "+ class dataset");
    add.title = t(d.in_dataset ? "In the class dataset" : "Add to class dataset");
    add.addEventListener("click", () => teacher("PUT", `/drawings/${d.id}/dataset`, { on: !d.in_dataset }).catch((err) => say(err.message)));
    li.append(truth, add);
  }
  li.setAttribute("aria-label", `${d.student}: ${S.reveal ? `read as ${d.guess}` : "guess hidden"}${d.label !== null ? `, drew ${d.label}` : ""}`);
  return li;
}

$("reveal").addEventListener("change", (e) => teacher("PATCH", "", { reveal: e.target.checked }).catch((err) => say(err.message)));
$("misread-only").addEventListener("change", renderGallery);
$("clear-gallery").addEventListener("click", () => {
  if (confirm(t("Delete every drawing in the gallery?"))) teacher("POST", "/clear").catch((err) => say(err.message));
});
$("end").addEventListener("click", () => $("end-dialog").showModal());
$("end-dialog").addEventListener("close", () => {
  const choice = $("end-dialog").returnValue;
  if (choice === "keep" || choice === "delete") teacher("POST", "/end", { keep: choice === "keep" }).catch((err) => say(err.message));
});
$("join-size").addEventListener("click", () => {
  S.joinOpen = $("session-panel").classList.contains("joined");
  showStudents(S.students);
});
$("download-drawings").addEventListener("click", async () => {
  const names = $("download-names").checked;
  try {
    await download(`/api/sessions/${S.code}/dataset.zip?names=${names}`, `class-${S.code}-drawings.zip`, { "X-Teacher-Key": S.key });
    say(t("Saved: a PNG per labelled drawing and labels.csv (in_dataset = 1: what the fine-tune learns from)."));
  } catch (err) {
    say(err.message);
  }
});
$("finetune").addEventListener("click", async () => {
  say(t("Fine-tuning on the class dataset…"));
  $("finetune").disabled = true;
  try {
    say(fineTuneReport(await teacher("POST", "/finetune")));
  } catch (err) {
    say(err.message);
  } finally {
    $("finetune").disabled = false;
  }
});
document.addEventListener("keydown", (e) => {
  if (!isShortcut(e) || !S.code) return;
  if (e.key === "g" || e.key === "G") $("reveal").click();
  if (e.key === "m" || e.key === "M") $("misread-only").click();
});

init().catch((err) => { $("start-error").textContent = err.message; });
