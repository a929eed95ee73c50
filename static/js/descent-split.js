// /descent, "split the data": a small network learns to separate two classes of points, one
// epoch of mini-batches of 10 a step (POST /api/split/step), as TensorFlow Playground does.
import { sendJSON } from "./api.js";
import { $ } from "./dom.js";
import { t } from "./i18n.js";

export class SplitTab {
  // S: the page's state; render and stop: the page's own.
  constructor(S, { render, stop }) {
    Object.assign(this, { S, render, stop });
  }

  reset() {
    const S = this.S;
    S.splitGeneration = (S.splitGeneration || 0) + 1;  // answers to requests sent before are dropped
    S.splitPending = 0;
    S.splitQueued = false;
    Object.assign(S.split, { state: null, losses: [], grid: null, accuracy: null, status: "running", curve: null });
    S.n = 0;
    this.step(0);
  }

  // Steps asked for while a request is out are not lost: they are sent next, together.
  async step(k) {
    const S = this.S, sp = S.split;
    S.splitPending = (S.splitPending || 0) + k;
    S.splitQueued = true;
    if (S.splitBusy) return;
    S.splitBusy = true;
    try {
      while (S.splitQueued && sp.status !== "diverged") {
        const steps = Math.min(200, S.splitPending);  // the server takes at most 200 epochs a request
        S.splitPending -= steps;
        S.splitQueued = S.splitPending > 0;
        await this.request(steps);
      }
    } finally {
      S.splitBusy = false;
    }
    this.render();
  }

  async request(steps) {
    const S = this.S, sp = S.split;
    const layers = sp.layers.split(/[ ,]+/).filter(Boolean).map(Number);
    const body = { task: sp.task, layers, activation: sp.activation, learning_rate: S.lr, steps, state: sp.state, seed: 0 };
    if (sp.dataset === "mine") body.points = sp.task === "regression" ? sp.mine.map(([x, y]) => [x, y]) : sp.mine;
    else body.dataset = sp.dataset;
    const generation = S.splitGeneration;
    try {
      const r = await sendJSON("POST", "/api/split/step", body);
      if (generation !== S.splitGeneration) return;
      Object.assign(sp, { state: r.state, grid: r.grid, accuracy: r.accuracy, points: r.points, status: r.status,
                          neurons: r.neurons, curve: r.curve || null });
      sp.losses.push(...r.loss);
      S.n = sp.losses.length;
      $("verdict").textContent = r.status === "diverged" ? t("Diverged: the learning rate is too large. Press RESET.") : "";
      if (r.status === "diverged") this.stop();
    } catch (err) {
      sp.points = sp.dataset === "mine" ? sp.mine : sp.points;
      $("verdict").textContent = err.message;
      S.splitPending = 0;
      this.stop();
    }
    this.render();
  }
}
