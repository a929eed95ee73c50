// What every page shares: projector mode (Shift+P or the button; remembered and in the URL), the
// keyboard-shortcut overlay (?), a presentation clicker (Page Down = Space, Page Up = R), and
// lesson links (?hide=controls&note=text: hide chosen controls, show the teacher's note).
import { t } from "./i18n.js";
import { isShortcut, isTyping } from "./keys.js";
import { $ } from "./dom.js";
import { studentsAddress } from "./students-address.js";

const PROJECTOR_KEY = "neuronlab.projector";
export const LESSON_PARAMS = ["projector", "hide", "note", "lang"]; // kept when a page rewrites its URL

function replaceQuery(params) {
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

// The page's whole state as its query (the lesson parameters are kept).
export function setQuery(params) {
  const current = new URLSearchParams(location.search);
  for (const key of LESSON_PARAMS) if (current.has(key) && !params.has(key)) params.set(key, current.get(key));
  replaceQuery(params);
}

// One parameter of the address (null removes it), the others kept.
export function setParam(name, value) {
  const params = new URLSearchParams(location.search);
  if (value === null) params.delete(name); else params.set(name, value);
  replaceQuery(params);
}

// --- projector mode ---------------------------------------------------------------------------

function setProjector(on) {
  document.documentElement.classList.toggle("projector", on);
  $("projector-toggle").setAttribute("aria-pressed", String(on));
  localStorage.setItem(PROJECTOR_KEY, on ? "1" : "0");
  setParam("projector", on ? "1" : null);
  window.dispatchEvent(new Event("resize")); // canvases refit to their new size
  showCurrentPage();
}

// A menu too long for one line scrolls sideways (phones, a projector): keep this page's entry in view.
function showCurrentPage() {
  const nav = document.querySelector(".topbar nav"), current = nav?.querySelector('[aria-current="page"]');
  if (!current || nav.scrollWidth <= nav.clientWidth) return;
  const left = current.offsetLeft - nav.offsetLeft, right = left + current.offsetWidth;
  if (left < nav.scrollLeft || right > nav.scrollLeft + nav.clientWidth) nav.scrollLeft = right - nav.clientWidth + 8;
}

const asked = new URLSearchParams(location.search).get("projector");
setProjector(asked !== null ? asked !== "0" : localStorage.getItem(PROJECTOR_KEY) === "1");
$("projector-toggle").addEventListener("click", () => setProjector(!document.documentElement.classList.contains("projector")));
$("panels-toggle").hidden = !document.querySelector(".secondary"); // only where something is collapsed
$("panels-toggle").addEventListener("click", () => {
  const on = document.documentElement.classList.toggle("show-secondary");
  $("panels-toggle").setAttribute("aria-pressed", String(on));
});

// --- keyboard ---------------------------------------------------------------------------------

document.addEventListener("keydown", (e) => {
  const clicker = e.key === "PageDown" || e.key === "PageUp";
  if (clicker ? isTyping(e) : !isShortcut(e)) return;
  if (e.key === "?") { e.preventDefault(); $("shortcuts").showModal(); }
  else if (e.key === "P" && e.shiftKey) { e.preventDefault(); setProjector(!document.documentElement.classList.contains("projector")); }
  else if (e.key === "PageDown" || e.key === "PageUp") {  // a presentation clicker
    e.preventDefault();
    const key = e.key === "PageDown" ? " " : "r";
    document.body.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
  }
});

// --- lesson links -------------------------------------------------------------------------------

function applyLesson() {
  const params = new URLSearchParams(location.search);
  const hidden = (params.get("hide") || "").split(",").filter(Boolean);
  for (const el of document.querySelectorAll("[data-control]")) el.classList.toggle("lesson-hidden", hidden.includes(el.getAttribute("data-control")));
  const note = params.get("note");
  $("lesson-note").hidden = !note;
  $("lesson-note-text").textContent = note || "";
}

function lessonLink(origin) {
  const params = new URLSearchParams(location.search);
  const hide = [...$("lesson-controls").querySelectorAll("input:checked")].map((i) => i.value);
  if (hide.length) params.set("hide", hide.join(",")); else params.delete("hide");
  const note = $("lesson-text").value.trim();
  if (note) params.set("note", note); else params.delete("note");
  const query = params.toString();
  return `${origin}${location.pathname}${query ? `?${query}` : ""}`;
}

// The link and its QR code hold the address students can reach (students-address.js), with a
// warning when the page was opened on this machine's own address and no other is known.
async function refreshLesson() {
  const { origin, warning } = await studentsAddress();
  const link = lessonLink(origin);
  let note = $("lesson-dialog-warning");
  if (!note) {
    note = Object.assign(document.createElement("p"), { id: "lesson-dialog-warning", className: "join-warning" });
    note.setAttribute("role", "alert");
    $("lesson-link").after(note);
  }
  note.hidden = !warning;
  note.textContent = warning;
  $("lesson-link").value = link;
  $("lesson-qr").src = `/api/qr.svg?text=${encodeURIComponent(link)}`;
  $("lesson-open").href = link;
}

$("lesson-toggle").addEventListener("click", () => {
  const hidden = (new URLSearchParams(location.search).get("hide") || "").split(",");
  $("lesson-controls").replaceChildren(...[...document.querySelectorAll("[data-control]")].map((el) => {
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    const name = el.getAttribute("data-control"); // not el.dataset: a form's field named "dataset" hides it
    box.value = name;
    box.checked = hidden.includes(name);
    box.addEventListener("change", refreshLesson);
    label.append(box, ` ${t(`control.${name}`, name)}`);
    return label;
  }));
  if (!$("lesson-controls").children.length) $("lesson-controls").textContent = t("lesson.nothing", "This page has no controls to hide.");
  $("lesson-text").value = new URLSearchParams(location.search).get("note") || "";
  refreshLesson();
  $("lesson").showModal();
});
$("lesson-text").addEventListener("input", refreshLesson);
$("help-toggle").addEventListener("click", () => $("shortcuts").showModal());
$("lang-pick").addEventListener("change", (e) => {
  document.cookie = `neuronlab_lang=${e.target.value}; path=/; max-age=31536000; samesite=lax`;
  const params = new URLSearchParams(location.search);
  params.set("lang", e.target.value);
  location.search = params.toString();
});
$("lesson-copy").addEventListener("click", () => navigator.clipboard?.writeText($("lesson-link").value));
$("lesson-note-close").addEventListener("click", () => { $("lesson-note").hidden = true; });
applyLesson();
