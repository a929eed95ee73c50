// Teach new classes: projects, their classes and photos (files or webcam). Training, results and
// trying the model live are in teach-train.js. Every name is shown with textContent: never as markup.
import { t } from "./i18n.js";
import { download, getJSON, postForm, sendJSON } from "./api.js";
import { frameBlob, startCamera } from "./camera.js";
import { TrainPanel } from "./teach-train.js";
import { isShortcut } from "./keys.js";
import { $ } from "./dom.js";
import { at, readURL, writeURL } from "./url-state.js";

const SHOWN = 24; // thumbnails per class (the newest)
const S = { project: null, stream: null, rows: new Map(), recording: null };

const LAST = "neuronlab.teach.project";
// The address: the open project's id (a link opens it, as on a projector that shows no list).
const address = { project: null };
const URL_STATE = [at("project", (s) => s, "project", { parse: (v) => v || null })];

function say(id, message) { $(id).textContent = message; }

async function act(errorId, fn) {
  say(errorId, "");
  try { return await fn(); } catch (err) { say(errorId, err.message); }
}

// --- projects ---------------------------------------------------------------------------------

// The project list is a side panel (hidden on a projector) only while a project is open: with
// none open it is the page.
function showList(alone) {
  document.querySelector(".teach-projects").classList.toggle("secondary", !alone);
}

async function loadProjects() {
  const { projects } = await getJSON("/api/projects");
  $("project-list").replaceChildren(...projects.map((p) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "project-pick";
    if (S.project && p.id === S.project.id) button.setAttribute("aria-current", "true");
    const name = document.createElement("strong");
    name.textContent = p.name;
    const info = document.createElement("small");
    info.textContent = t(p.model_id ? "{c} classes · {n} photos · trained" : "{c} classes · {n} photos", undefined, { c: p.classes, n: p.samples });
    button.append(name, info);
    button.addEventListener("click", () => openProject(p.id));
    li.append(button);
    return li;
  }));
  if (!projects.length) {
    const none = document.createElement("li");
    none.className = "hint";
    none.textContent = t("No projects yet: create one below.");
    $("project-list").replaceChildren(none);
  }
}

async function openProject(id) {
  const project = await act("projects-error", () => getJSON(`/api/projects/${id}`));
  if (!project) return;
  S.project = project;
  showList(false);
  address.project = id;
  writeURL(URL_STATE, address);
  localStorage.setItem(LAST, id);
  $("project").hidden = $("teach-train").hidden = false;
  $("project-name").textContent = project.name;
  renderClasses();
  train.show(project);
  loadProjects();
}

async function refresh() {
  S.project = await getJSON(`/api/projects/${S.project.id}`);
  for (const c of S.project.classes) if (S.rows.has(c.id)) fillRow(S.rows.get(c.id), c);
  train.show(S.project);
  loadProjects();  // the list's photo counts too
}

$("new-project").addEventListener("submit", (e) => {
  e.preventDefault();
  const classes = $("new-classes").value.split(",").map((s) => s.trim()).filter(Boolean);
  act("projects-error", async () => {
    const project = await sendJSON("POST", "/api/projects", { name: $("new-name").value, classes });
    $("new-project").reset();
    await openProject(project.id);
  });
});

$("rename-project").addEventListener("click", () => {
  const name = prompt(t("New name for the project"), S.project.name);
  if (name !== null) act("project-error", async () => { await sendJSON("PATCH", `/api/projects/${S.project.id}`, { name }); await openProject(S.project.id); });
});

// A project as one file (photos, classes, model and score), to open on another server.
$("export-project").addEventListener("click", () => act("project-error", () =>
  download(`/api/projects/${S.project.id}/export`, `${S.project.name}.neuronlab`)));

$("import-project").addEventListener("change", (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (file) act("projects-error", async () => {
    const project = await postForm("/api/projects/import", { file });
    await openProject(project.id);
  });
});

$("delete-project").addEventListener("click", () => {
  if (!confirm(t("Delete \"{name}\" with all its photos and its model? This cannot be undone.", undefined, { name: S.project.name }))) return;
  act("project-error", async () => {
    await sendJSON("DELETE", `/api/projects/${S.project.id}`);
    S.project = null;
    train.stop();
    $("project").hidden = $("teach-train").hidden = true;
    showList(true);
    address.project = null;
    writeURL(URL_STATE, address);
    await loadProjects();
  });
});

// --- classes and their photos --------------------------------------------------------------------

function renderClasses() {
  S.rows.clear();
  $("classes").replaceChildren(...S.project.classes.map((c, i) => {
    const li = document.createElement("li");
    li.className = "class-row";
    li.innerHTML = `<div class="class-head"><kbd class="key"></kbd><h3 class="class-name"></h3><span class="count"></span>
      <label class="upload"><span class="add-text"></span> <input type="file" multiple accept="image/png,image/jpeg,image/webp,image/gif"></label>
      <button type="button" class="record"></button>
      <button type="button" class="rename"></button><button type="button" class="remove danger"></button></div>
      <div class="thumbs"></div>`;
    li.querySelector(".key").textContent = i < 9 ? String(i + 1) : "";
    li.querySelector(".class-name").textContent = c.name;
    li.querySelector(".add-text").textContent = t("Add photos…");
    li.querySelector(".record").textContent = `● ${t("Record")}`;
    li.querySelector(".rename").textContent = t("Rename");
    li.querySelector(".remove").textContent = t("Delete");
    li.querySelector("input[type=file]").setAttribute("aria-label", t("Add photos of {name}", undefined, { name: c.name }));
    li.querySelector(".record").setAttribute("aria-label", t("Record webcam photos of {name} (hold)", undefined, { name: c.name }));
    li.querySelector("input[type=file]").addEventListener("change", (e) => {
      addSamples(c.id, [...e.target.files], "upload");
      e.target.value = "";
    });
    const record = li.querySelector(".record");
    record.addEventListener("pointerdown", () => startRecording(c.id, record));
    for (const type of ["pointerup", "pointerleave", "pointercancel"]) record.addEventListener(type, stopRecording);
    li.querySelector(".rename").addEventListener("click", () => {
      const name = prompt(t("New name for the class \"{name}\"", undefined, { name: c.name }), c.name);
      if (name !== null) act("project-error", async () => {
        await sendJSON("PATCH", `/api/projects/${S.project.id}/classes/${c.id}`, { name });
        await openProject(S.project.id);
      });
    });
    li.querySelector(".remove").addEventListener("click", () => {
      if (!confirm(t("Delete the class \"{name}\" and its {n} photos?", undefined, { name: c.name, n: c.count }))) return;
      act("project-error", async () => {
        await sendJSON("DELETE", `/api/projects/${S.project.id}/classes/${c.id}`);
        await openProject(S.project.id);
      });
    });
    S.rows.set(c.id, li);
    fillRow(li, c);
    return li;
  }));
}

function fillRow(li, c) {
  li.querySelector(".count").textContent = t(c.count === 1 ? "{n} photo" : "{n} photos", undefined, { n: c.count });
  const thumbs = li.querySelector(".thumbs");
  const shown = c.samples.slice(-SHOWN).reverse();
  thumbs.replaceChildren(...shown.map((id) => {
    const figure = document.createElement("figure");
    const img = new Image();
    img.src = `/api/projects/${S.project.id}/samples/${id}.jpg`;
    img.alt = t("{name}, photo {n}", undefined, { name: c.name, n: c.samples.indexOf(id) + 1 });
    img.loading = "lazy";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "thumb-remove";
    remove.textContent = "×";
    remove.setAttribute("aria-label", t("Remove {what}", undefined, { what: img.alt }));
    remove.addEventListener("click", () => act("project-error", async () => {
      await sendJSON("DELETE", `/api/projects/${S.project.id}/samples/${id}`);
      await refresh();
    }));
    figure.append(img, remove);
    return figure;
  }));
  if (c.count > SHOWN) {
    const more = document.createElement("span");
    more.className = "more";
    more.textContent = `+${c.count - SHOWN} more`;
    thumbs.append(more);
  }
  if (!c.count) {
    const none = document.createElement("span");
    none.className = "hint";
    none.textContent = t("No photos yet: add some, or record from the webcam.");
    thumbs.replaceChildren(none);
  }
}

async function addSamples(classId, blobs, source) {
  if (!blobs.length) return;
  await train.whileSaving(act("project-error", async () => {
    await postForm(`/api/projects/${S.project.id}/samples`, { class_id: classId, source, images: blobs });
    await refresh();
  }));
}

$("new-class").addEventListener("submit", (e) => {
  e.preventDefault();
  act("project-error", async () => {
    await sendJSON("POST", `/api/projects/${S.project.id}/classes`, { name: $("class-name").value });
    $("class-name").value = "";
    await openProject(S.project.id);
  });
});

// --- the webcam ------------------------------------------------------------------------------

async function ensureCamera() {
  if (S.stream) return true;
  try {
    S.stream = await startCamera($("video"));
  } catch (err) {
    say("project-error", `${t("The webcam is not available:")} ${err.message}`);
    return false;
  }
  $("video").hidden = false;
  $("camera-start").hidden = true;
  return true;
}
$("camera-start").addEventListener("click", ensureCamera);

// While a Record button (or a class's number key) is held: a frame every 300 ms, sent in turn.
async function startRecording(classId, button) {
  if (S.recording || !(await ensureCamera())) return;
  const rec = { classId, button, frames: [], timer: null, busy: false };
  S.recording = rec;
  button?.classList.add("recording");
  // a frame being grabbed counts as a photo being saved: Train waits for it (a release of the
  // button while a frame is on its way would otherwise train without it)
  const grab = () => train.whileSaving((async () => {
    if ($("video").videoWidth) rec.frames.push(await frameBlob($("video"), 320));
    if (!rec.busy && rec.frames.length) {
      rec.busy = true;
      const batch = rec.frames.splice(0);
      await addSamples(classId, batch, "webcam");
      rec.busy = false;
    }
  })());
  grab();
  rec.timer = setInterval(grab, 300);
}

async function stopRecording() {
  const rec = S.recording;
  if (!rec) return;
  S.recording = null;
  clearInterval(rec.timer);
  rec.button?.classList.remove("recording");
  if (rec.frames.length) await addSamples(rec.classId, rec.frames.splice(0), "webcam");
}

document.addEventListener("keydown", (e) => {
  if (e.repeat || !isShortcut(e) || !S.project) return;
  const c = S.project.classes[Number(e.key) - 1];
  if (/^[1-9]$/.test(e.key) && c) startRecording(c.id, S.rows.get(c.id).querySelector(".record"));
});
document.addEventListener("keyup", (e) => { if (/^[1-9]$/.test(e.key)) stopRecording(); });

const train = new TrainPanel({ $, ensureCamera, video: () => $("video"), project: () => S.project, refresh });

loadProjects().catch((err) => say("projects-error", `Could not list the projects: ${err.message}`));
// the project in the address, else the one this browser had open last (a projector shows no list)
const wanted = readURL(URL_STATE, address).project || localStorage.getItem(LAST);
showList(!wanted);
if (wanted) openProject(wanted).then(() => { if (!S.project) { localStorage.removeItem(LAST); showList(true); } });
