// A student in a class session: join with the code and a name, then draw. The guess updates live
// while drawing (/ws/draw); each finished stroke sends the drawing to the class gallery, and the
// student can say what it really shows. A project the teacher shows the class appears at once
// (share.js). The student's key stays in this browser.
import { LiveSocket, getJSON, postForm, sendJSON } from "./api.js";
import { t } from "./i18n.js";
import { DrawingPad } from "./pad.js";
import { percent } from "./format.js";
import { isShortcut } from "./keys.js";
import { $ } from "./dom.js";
import { at, readURL, writeURL } from "./url-state.js";
import { SharedProject } from "./share.js";

const S = { code: null, me: null, labels: [], drawingId: null, sending: false, dirty: false, socket: null, lastSent: 0, later: null,
  session: null, ended: false, shared: null };
const keyName = (code) => `neuronlab.student.${code}`;
// The address: the session's code (the join link and its QR code carry it).
const URL_STATE = [at("code", (s) => s, "code", { parse: (v) => v.toUpperCase() })];

function status(text) { $("student-status").textContent = text; }

// --- joining -------------------------------------------------------------------------------------

async function enter(code, me) {
  Object.assign(S, { code, me, labels: me.labels });
  localStorage.setItem(keyName(code), JSON.stringify(me));
  writeURL(URL_STATE, S);
  $("join-panel").hidden = true;
  $("student-panel").hidden = false;
  $("me").textContent = me.name;
  $("label-buttons").replaceChildren(...S.labels.map((label, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.setAttribute("aria-pressed", "false");
    b.addEventListener("click", () => sendLabel(i));
    return b;
  }));
  pad.resize();
  const info = await getJSON(`/api/sessions/${code}`);
  if (info.ended) return showEnded(info.kept);
  // the session itself: the server says at once when the teacher ends it or shows the class a
  // project (the key goes in the first message); it says at once, each time it (re)opens, whether a
  // project is shown
  S.shared = new SharedProject(code);
  S.session = new LiveSocket(`/ws/sessions/${code}/student`, {
    onOpen: () => S.session.send({ key: me.student_key }),
    onMessage: (e) => {
      if (e.type === "project") { if (e.shared) S.shared.refresh(); else S.shared.hide(); }
      if (e.type === "ended") showEnded(e.kept);
      if (e.type === "error") S.session.close();  // not a student of it (any more): drawing says why
    },
  });
  S.socket = new LiveSocket(`/ws/draw?steps=false&model=${encodeURIComponent(info.model_id)}`, { onMessage: onLive, onOpen: pump });
}

$("join-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("join-error").textContent = "";
  const code = $("join-code").value.trim().toUpperCase();
  try {
    const me = await sendJSON("POST", `/api/sessions/${encodeURIComponent(code)}/students`, { name: $("join-name").value });
    await enter(me.code, me);
  } catch (err) {
    $("join-error").textContent = err.message;
  }
});

// --- drawing -------------------------------------------------------------------------------------

// Thirty students share one small server: frames are 112x112 and at most 10 a second each; the
// server reads the frames of all of them in batches (bench/bench_classroom.py measures this load).
const FRAME = 112, MIN_GAP_MS = 100;
const pad = new DrawingPad($("pad"), { frameSize: FRAME, onChange: (ended) => { S.dirty = true; pump(); if (ended) share(); } });

function pump() {  // the live guess: at most one frame in flight, the latest wins
  if (!S.dirty || S.sending || !S.socket || !S.socket.ready || pad.empty) return;
  const wait = S.lastSent + MIN_GAP_MS - performance.now();
  if (wait > 0) { clearTimeout(S.later); S.later = setTimeout(pump, wait); return; }
  S.dirty = false;
  S.sending = true;
  S.lastSent = performance.now();
  pad.frameBlob().then((blob) => { if (!S.socket.send(blob)) S.sending = false; });
}

function onLive(message) {
  if (message.frame !== undefined) S.sending = false;
  if (message.type === "prediction" && !pad.empty) showGuess(message.prediction, message.confidence);
  pump();
}

function showGuess(guess, confidence) {
  $("guess").textContent = guess;
  $("confidence").textContent = percent(confidence);
}

async function share() {  // the finished stroke goes to the class gallery
  if (pad.empty) return;
  try {
    const drawing = await postForm(`/api/sessions/${S.code}/drawings`,
      { image: await pad.frameBlob(), drawing_id: S.drawingId }, { "X-Student-Key": S.me.student_key });
    S.drawingId = drawing.id;
    showGuess(drawing.guess, drawing.confidence);
    $("label-box").hidden = false;
    markLabel(null);
    $("announce").textContent = t("join.reads", "", { guess: drawing.guess });
    status("");
  } catch (err) {
    if (err.status === 410) return endedNow();
    status(err.message);
  }
}

// The session has ended: the student's page says so, and what became of the drawings; no pad.
function showEnded(kept) {
  if (S.ended) return;
  S.ended = true;
  for (const socket of [S.session, S.socket]) socket?.close();
  S.shared?.hide();
  $("join-panel").hidden = true;
  $("student-panel").hidden = true;
  $("ended-box").hidden = false;
  $("ended-text").textContent = t(kept === false ? "join.ended_deleted" : kept ? "join.ended_kept" : "join.ended_new");
}

async function endedNow() {
  const info = await getJSON(`/api/sessions/${S.code}`).catch(() => ({ kept: null }));
  showEnded(info.kept);
}

async function sendLabel(i) {
  try {
    await sendJSON("PUT", `/api/sessions/${S.code}/drawings/${S.drawingId}/label`, { label: i },
      { "X-Student-Key": S.me.student_key });
    markLabel(i);
    status(t("join.thanks", "", { label: S.labels[i] }));
  } catch (err) {
    if (err.status === 410) return endedNow();
    status(err.message);
  }
}

function markLabel(i) {
  [...$("label-buttons").children].forEach((b, j) => b.setAttribute("aria-pressed", String(j === i)));
}

function nextDrawing() {
  S.drawingId = null;
  pad.clear();
  $("label-box").hidden = true;
  $("guess").textContent = "…";
  $("confidence").textContent = "";
  status("");
}

$("undo").addEventListener("click", () => pad.undo());
$("clear").addEventListener("click", () => pad.clear());
$("next").addEventListener("click", nextDrawing);
document.addEventListener("keydown", (e) => {
  if (!isShortcut(e) || $("student-panel").hidden || S.ended) return;
  const key = e.key.toLowerCase();
  if (key === "u") pad.undo();
  if (key === "c") pad.clear();
  if (key === "n") nextDrawing();
});

const { code } = readURL(URL_STATE, { code: "" });
$("join-code").value = code;
const saved = code && JSON.parse(localStorage.getItem(keyName(code)) || "null");
if (saved) enter(code, saved);
else if (code) getJSON(`/api/sessions/${encodeURIComponent(code)}`).then((info) => { if (info.ended) showEnded(info.kept); }, () => {});
