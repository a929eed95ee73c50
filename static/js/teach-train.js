// The Train panel of the teach page: start a job on the project's photos and follow it over
// /ws/train/{id}; show held-out accuracy per class and the confusion matrix (a click opens the
// misread photos); then try the model on the webcam, live, or on a photo.
import { t as tr } from "./i18n.js";
import { LiveSocket, pageConfig, postForm, sendJSON } from "./api.js";
import { refusal } from "./server-text.js";
import { frameBlob } from "./camera.js";
import { createBars } from "./render.js";
import { percent } from "./format.js";
import { showConfusion, showProgress } from "./train-view.js";

// A job's statuses, from the server (engine/choices.py).
const { QUEUED, DONE, DIVERGED, FAILED, INTERRUPTED } = pageConfig().jobStatus;

export class TrainPanel {
  constructor({ $, ensureCamera, video, project, refresh }) {
    Object.assign(this, { $, ensureCamera, video, project, refresh, socket: null, jobId: null, since: 0, liveBusy: false,
      running: false, saving: 0 });
    $("train").addEventListener("click", () => this.start());
    $("stop").addEventListener("click", () => this.jobId && sendJSON("POST", `/api/train/${this.jobId}/stop`).catch(() => {}));
    $("live").addEventListener("change", async (e) => {
      if (e.target.checked && !(await ensureCamera())) e.target.checked = false;
      this.liveLoop();
    });
    for (const radio of document.querySelectorAll('input[name="method"]')) radio.addEventListener("change", () => this.showMethod());
    this.showMethod();
    $("train-other").addEventListener("click", () => this.start(this.otherMethod));
    $("try-file").addEventListener("change", (e) => {
      if (e.target.files[0]) this.classify(e.target.files[0], e.target.files[0].name);
      e.target.value = "";
    });
  }

  // A project was opened or changed: results, the live box, and a job still running.
  show(project) {
    const $ = this.$;
    const trained = Boolean(project.model_id && project.result);
    $("results").hidden = !trained;
    $("live-box").hidden = !trained;
    if (trained) this.showResults(project);
    if (project.job && project.job.id !== this.jobId) this.follow(project.job.id);
    if (!project.job && !this.jobId) this.setRunning(false);
  }

  method() { return document.querySelector('input[name="method"]:checked').value; }

  showMethod() {
    for (const el of document.querySelectorAll(".scratch-only")) el.hidden = this.method() !== "scratch";
  }

  // Train the chosen way (or `method`): transfer learning answers at once; from scratch is a job to follow.
  async start(method = this.method()) {
    const $ = this.$;
    $("train-status").textContent = method === "transfer" ? tr("Reading each photo with the ImageNet network, then training the new layer…") : "";
    const body = method === "transfer" ? {} : { method, epochs: Number($("epochs").value), mirror: $("mirror").checked };
    this.setRunning(true, method === "scratch");
    try {
      const answer = await sendJSON("POST", `/api/projects/${this.project().id}/train`, body);
      if (answer.method === "transfer") {
        this.setRunning(false);
        const r = answer.project.result;
        $("train-status").textContent = tr("Transfer learning: {n} photos learned from, {k} kept aside to test on, in {s} s.", undefined,
          { n: answer.train_photos, k: answer.held_out_photos, s: r.seconds });
        this.refresh();
        return;
      }
      $("train-status").textContent = tr("Training on {n} photos; {k} are kept aside to test on.", undefined, { n: answer.train_photos, k: answer.held_out_photos });
      this.follow(answer.id);
    } catch (err) {
      this.setRunning(false);
      $("train-status").textContent = err.message;
    }
  }

  setRunning(running, stoppable = running) {
    this.running = running;
    this.showButtons();
    this.$("stop").hidden = !stoppable;
  }

  // Photos still on their way to the server (an upload, a recording's frames) are not in the project
  // yet: Train waits until `work` is done, so a run (and both runs of a comparison) learns from the
  // photos on screen.
  async whileSaving(work) {
    this.saving += 1;
    this.showButtons();
    try {
      return await work;
    } finally {
      this.saving -= 1;
      this.showButtons();
    }
  }

  showButtons() {
    for (const id of ["train", "train-other"]) {
      this.$(id).disabled = this.running || this.saving > 0;
      this.$(id).title = this.saving > 0 ? tr("Saving photos…") : "";
    }
  }

  follow(jobId) {
    this.stop();
    Object.assign(this, { jobId, since: 0 });
    this.setRunning(true);
    this.socket = new LiveSocket(() => `/ws/train/${jobId}?since=${this.since}`, { onMessage: (e) => this.onEvent(e) });
  }

  stop() {
    if (this.socket) this.socket.close();
    Object.assign(this, { socket: null, jobId: null });
  }

  onEvent(e) {
    const $ = this.$;
    if (e.seq) this.since = e.seq;
    if (e.type === "status" && e.status === QUEUED) $("progress-text").textContent = tr("Waiting for the server: place {n} in the queue", undefined, { n: e.position });
    if (e.type === "progress") showProgress($("progress-fill"), $("progress-text"), e, Math.ceil(e.total_steps / e.batches));
    if (e.type === "epoch") $("train-status").textContent = tr("Epoch {n}: {p} of the held-out photos right", undefined, { n: e.epoch, p: percent(e.val_accuracy) });
    if (e.type === "error") $("train-status").textContent = e.message;
    if (e.type === "done") {
      this.stop();
      this.setRunning(false);
      $("train-status").textContent = [FAILED, INTERRUPTED].includes(e.status) ? `${tr(e.status === FAILED ? "Training failed:" : "Interrupted:")} ${e.error}` :
        tr(e.status === DIVERGED ? "Training diverged: the loss blew up." : e.status === DONE ? "Training finished." : "Training stopped.");
      this.refresh();
    }
  }

  showResults(project) {
    const $ = this.$, r = project.result;
    // photos or classes changed since: these results are about another set of photos
    const total = project.classes.reduce((n, c) => n + c.count, 0);
    const stale = (r.photos !== undefined && r.photos !== total) || r.labels.join("\n") !== project.classes.map((c) => c.name).join("\n");
    $("results").classList.toggle("stale", stale);
    if (!this.jobId) {
      $("progress-fill").style.width = "100%";
      $("progress-text").textContent = stale
        ? tr("The photos or classes changed since this model was trained: press Train to teach it the new ones.")
        : tr("Trained: {n} steps in {s} s. Add photos and train again to improve it.", undefined, { n: r.steps, s: r.seconds });
    }
    $("accuracy").textContent = percent(r.accuracy);
    this.showComparison(r);
    $("accuracy-note").textContent = tr("of the {n} held-out photos read right (photos kept out of training)", undefined, { n: r.held_out.length });
    createBars($("per-class"), r.labels).update(r.per_class.map((v) => v ?? 0), false);
    showConfusion($("confusion"), r, r.labels, (t, p) => this.showMistakes(project, t, p));
    $("open-classify").href = `/classify?model=${encodeURIComponent(project.model_id)}`;
    if (!this.bars || this.barsFor !== project.model_id) {
      this.bars = createBars($("live-bars"), r.labels);
      this.barsFor = project.model_id;
    }
  }

  // Both ways of training side by side on the same held-out photos (projects trained before
  // there were two ways count as from scratch).
  showComparison(r) {
    const $ = this.$, methods = r.methods || { [r.method || "scratch"]: r };
    const same = methods.transfer && methods.scratch && methods.transfer.held_out.join() === methods.scratch.held_out.join();
    for (const m of ["transfer", "scratch"]) {
      const cell = $(`compare-${m}`);
      cell.textContent = methods[m] ? percent(methods[m].accuracy) : "–";
      cell.classList.toggle("current", (r.method || "scratch") === m);
    }
    this.otherMethod = methods.transfer && !methods.scratch ? "scratch" : "transfer";
    $("train-other").textContent = this.otherMethod === "scratch" ? tr("Train a CNN from scratch too, to compare")
      : tr("Train by transfer learning, to compare");
    $("train-other").hidden = Boolean(methods.transfer && methods.scratch);
    $("compare-note").textContent = methods.transfer && methods.scratch
      ? (same ? tr("Both were tested on the same {n} held-out photos.", undefined, { n: r.held_out.length })
        : tr("The held-out photos differ (photos changed between the two): train both again to compare fairly."))
      : tr("Transfer learning keeps the ImageNet network's {frozen} weights frozen and trains {trained}: 1280 × {k} + {k}.", undefined,
        { frozen: (r.frozen_parameters ?? 3371008).toLocaleString(), trained: (1280 * r.labels.length + r.labels.length).toLocaleString(), k: r.labels.length });
  }

  showMistakes(project, t, p) {
    const $ = this.$, r = project.result, ids = r.mistakes[`${t},${p}`] || [];
    $("mistakes-title").textContent = tr("{a} read as {b}: {n} held-out photos", undefined, { a: r.labels[t], b: r.labels[p], n: ids.length });
    $("mistake-images").replaceChildren(...ids.map((id) => {
      const img = new Image();
      img.src = `/api/projects/${project.id}/samples/${id}.jpg`;
      img.alt = tr("A photo of {a} the network read as {b}", undefined, { a: r.labels[t], b: r.labels[p] });
      return img;
    }));
    $("mistakes").showModal();
  }

  // Read one photo (a file, or a webcam frame) and show it beside the answer, with its name.
  async classify(blob, name) {
    const $ = this.$;
    this.showPhoto(blob, name);
    try {
      const body = await postForm(`/api/projects/${this.project().id}/predict`, { image: blob });
      const best = Math.max(...body.probabilities);
      $("live-verdict").textContent = `${body.prediction} · ${percent(best)}`;
      this.bars.update(body.probabilities);
    } catch (err) {
      $("live-verdict").textContent = refusal(err);
    }
  }

  showPhoto(blob, name) {
    const $ = this.$, img = $("try-photo");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    img.alt = img.title = $("try-photo-name").textContent = name;
    $("try-photo-box").hidden = false;
  }

  async liveLoop() {
    const $ = this.$;
    if (!$("live").checked || !this.project() || $("live-box").hidden) return;
    if (!this.liveBusy && this.video().videoWidth) {
      this.liveBusy = true;
      await this.classify(await frameBlob(this.video(), 320), tr("webcam"));
      this.liveBusy = false;
    }
    setTimeout(() => this.liveLoop(), 100);  // the next frame once this one is answered
  }
}
