// What the training page shows: curves (Chart.js from npm), progress, test images with guesses,
// the confusion matrix and its misclassified images. It only reads events.
import { t as translate } from "./i18n.js";
import { paintGrey } from "./render.js";
import { COLOURS, chartFont } from "./plot.js";
import { smoothTrain } from "./train-smooth.js";

// One colour a run: the palette's, then more of the same colour-blind-safe kind for the folds of a
// k-fold job (up to 10).
const PALETTE = [...COLOURS, "#D55E00", "#56B4E9", "#882255", "#44AA99", "#999999", "#000000"];
export const runColour = (run) => PALETTE[run % PALETTE.length];

// Chart text as every plot's (plot.js: dark, and large in projector mode).
function styleChart(o) {
  const { font, color } = chartFont(0.9);
  for (const axis of [o.scales.x, o.scales.y]) {
    Object.assign(axis.ticks, { font, color });
    Object.assign(axis.title, { font: { ...font, weight: "bold" }, color });
  }
  Object.assign(o.plugins.legend.labels, { font, color, boxWidth: font.size * 1.7 });
  return o;
}

function lineChart(canvas, yTitle, yMax) {
  const chart = new window.Chart(canvas, {
    type: "line",
    data: { datasets: [] },
    options: styleChart({
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      scales: {
        x: { type: "linear", title: { display: true, text: translate("step (mini-batches)") }, ticks: {} },
        y: { min: 0, max: yMax, title: { display: true, text: yTitle }, ticks: {} },
      },
      // the markers of the lowest validation loss are said under the progress, not in the legend
      // (on a projector their entries would leave the curves no room)
      plugins: { legend: { labels: { filter: (item, data) => !data.datasets[item.datasetIndex].marker } } },
      elements: { point: { radius: 0 } },
    }),
  });
  // projector mode can be switched on and off at any time (Shift+P)
  new MutationObserver(() => { styleChart(chart.options); chart.update("none"); })
    .observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
  return chart;
}

export class Curves {
  constructor(lossCanvas, accCanvas) {
    this.loss = lineChart(lossCanvas, translate("loss"), undefined);
    this.acc = lineChart(accCanvas, translate("accuracy"), 1);
    this.points = {};
    this.names = {};
  }

  // `labels`: each run's name when the runs differ in more than their rate (a comparison, folds)
  reset(learningRates, labels = null) {
    this.runs = learningRates.length;
    for (const chart of [this.loss, this.acc]) {
      chart.data.datasets = learningRates.flatMap((lr, run) => {
        const name = labels ? ` (${labels[run]})` : learningRates.length > 1 ? ` (lr ${lr})` : "";
        this.names[run] = name;
        return [
          { label: `${translate("train")}${name}`, data: [], borderColor: runColour(run), borderWidth: 3 },
          { label: `${translate("validation")}${name}`, data: [], borderColor: runColour(run), borderWidth: 3,
            borderDash: [8, 5], pointRadius: 5, pointStyle: "rectRot", showLine: true },
        ];
      });
    }
    // on the loss chart, one marker a run: the epoch of lowest validation loss (lessons 003, 004)
    this.loss.data.datasets.push(...learningRates.map((lr, run) => ({
      label: "", data: [], borderColor: runColour(run), backgroundColor: runColour(run), borderWidth: 3,
      pointStyle: "star", pointRadius: 14, pointHoverRadius: 16, showLine: false, marker: true })));
    for (const chart of [this.loss, this.acc]) chart.update();
    this.points = {};
  }

  // The train curve: each point the mean over the last training images (train-smooth.js); its
  // legend says so when that mean reaches further back than the run's last quarter.
  progress(e) {
    const points = (this.points[e.run] ||= []);
    points.push({ step: e.step, images: e.images, loss: e.loss, accuracy: e.accuracy });
    const s = smoothTrain(points);
    this.push(this.loss, 2 * e.run, e.step, Math.min(s.loss, 10));
    this.push(this.acc, 2 * e.run, e.step, s.accuracy);
    const label = s.old ? translate("train (mean since step {s}, older than the last quarter)", undefined, { s: s.since })
      : translate("train");
    for (const chart of [this.loss, this.acc]) {
      const dataset = chart.data.datasets[2 * e.run];
      if (dataset) dataset.label = label + (this.names[e.run] || "");
    }
  }

  epoch(e, batches) {
    this.push(this.loss, 2 * e.run + 1, e.epoch * batches, Math.min(e.val_loss, 10));
    this.push(this.acc, 2 * e.run + 1, e.epoch * batches, e.val_accuracy);
    const marker = this.loss.data.datasets[2 * (this.runs || 0) + e.run];
    if (!marker || !e.best_epoch) return;
    marker.data = [{ x: e.best_epoch * batches, y: Math.min(e.best_val_loss, 10) }];
    marker.label = translate(e.overfitting_from ? "overfitting from here" : "lowest validation loss") + (this.names[e.run] || "");
    this.scheduleUpdate(this.loss);
  }

  push(chart, index, x, y) {
    const dataset = chart.data.datasets[index];
    if (!dataset) return;
    dataset.data.push({ x, y });
    this.scheduleUpdate(chart);
  }

  scheduleUpdate(chart) {
    if (chart.pending) return;
    chart.pending = true;
    requestAnimationFrame(() => { chart.pending = false; chart.update("none"); });
  }
}

// m:ss, or h:mm:ss from an hour on (a k-fold job of all 60,000 images takes hours)
export const clock = (seconds) => {
  if (seconds == null || !isFinite(seconds)) return "–";
  const s = Math.round(seconds);
  const ms = `${String(Math.floor((s % 3600) / 60)).padStart(s >= 3600 ? 2 : 1, "0")}:${String(s % 60).padStart(2, "0")}`;
  return s >= 3600 ? `${Math.floor(s / 3600)}:${ms}` : ms;
};

// `rates`: each run's learning rate now (a race names every one), else the event's own.
// `folds`: a k-fold job's k: its folds train one after the other, "Fold 2/5 · ... batch 1500/1500",
// and the bar fills over them all.
export function showProgress(fill, text, e, epochs, rates = [e.learning_rate], folds = null) {
  const done = folds ? (e.run * e.total_steps + e.step) / (folds * e.total_steps) : e.step / e.total_steps;
  fill.style.width = `${100 * done}%`;
  const fold = folds ? `${translate("Fold {f}/{F}", undefined, { f: e.run + 1, F: folds })} · ` : "";
  text.textContent = fold + translate("Epoch {e}/{E} · batch {b}/{B} · step {s}/{S} · lr {lr} · ETA {eta}", undefined, {
    e: e.epoch, E: epochs, b: e.batch, B: e.batches, s: e.step, S: e.total_steps,
    lr: (folds ? [rates[e.run] ?? e.learning_rate] : rates).map((lr) => Number(lr.toPrecision(3))).join(" / "),
    eta: clock(e.eta) });
}

// The k-fold summary as the lesson's Keras loop prints it: each held-out fold's accuracy
// ("> 98.450"), then "Accuracy: mean=98.617 std=0.105, n=5" (percent; the spread is numpy's std).
// `folds`: the job's done event's {accuracies, mean, std, n, runs, of}.
export function showFolds(box, folds) {
  const pct = (v) => (v * 100).toFixed(3);
  const list = box.querySelector("ol");
  list.replaceChildren(...folds.accuracies.map((accuracy, i) => {
    const li = document.createElement("li");
    li.style.setProperty("--run", runColour(folds.runs[i]));
    li.dataset.fold = folds.runs[i] + 1;
    li.textContent = `> ${pct(accuracy)}   ${translate("fold {n}", undefined, { n: folds.runs[i] + 1 })}`;
    return li;
  }));
  box.querySelector(".kfold-mean").textContent = translate("Accuracy: mean={m} std={s}, n={n}", undefined,
    { m: pct(folds.mean), s: pct(folds.std), n: folds.n });
  box.querySelector(".kfold-partial").textContent = folds.n < folds.of
    ? translate("{n} of the {k} folds trained to the end: the job was stopped.", undefined, { n: folds.n, k: folds.of }) : "";
  box.hidden = false;
}

// The test images with the guesses of the model at `e.step` (`e.final`: the saved model's).
export function showSamples(box, e, labels) {
  box.replaceChildren();
  box.dataset.step = e.step ?? "";
  box.dataset.final = e.final ? "true" : "";
  e.images.forEach((img, i) => {
    const right = e.labels[i] === e.guesses[i];
    const figure = document.createElement("figure");
    figure.className = right ? "right" : "wrong";
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated";
    paintGrey(canvas, img);
    const caption = document.createElement("figcaption");
    caption.textContent = right ? `✓ ${labels[e.guesses[i]]}`
      : translate("✗ {guess} (is {truth})", undefined, { guess: labels[e.guesses[i]], truth: labels[e.labels[i]] });
    figure.append(canvas, caption);
    box.append(figure);
  });
}

export function showConfusion(table, result, labels, onCell) {
  const max = Math.max(...result.confusion.flat());
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  head.append(document.createElement("th"));
  for (const label of labels) {
    const th = document.createElement("th");
    th.textContent = label;
    th.scope = "col";
    head.append(th);
  }
  const body = table.createTBody();
  result.confusion.forEach((row, t) => {
    const tr = body.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = labels[t];
    tr.append(th);
    row.forEach((count, p) => {
      const td = tr.insertCell();
      td.textContent = count || "";
      const share = count / max;
      td.className = t === p ? "hit" : count ? "miss" : "";
      td.style.setProperty("--share", String(Math.sqrt(share)));
      if (t !== p && count) {
        td.tabIndex = 0;
        td.setAttribute("role", "button");
        td.setAttribute("aria-label", translate("{n} images of {a} read as {b}", undefined, { n: count, a: labels[t], b: labels[p] }));
        const open = () => onCell(t, p);
        td.addEventListener("click", open);
        td.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
      }
    });
  });
}

export function showMistakes(dialog, result, labels, t, p) {
  const cell = result.mistakes[`${t},${p}`];
  dialog.querySelector("#mistakes-title").textContent =
    translate("{a} read as {b}: {n} test images", undefined, { a: labels[t], b: labels[p], n: result.confusion[t][p] }) +
    (cell.images.length < result.confusion[t][p] ? ` ${translate("(first {n})", undefined, { n: cell.images.length })}` : "");
  const box = dialog.querySelector("#mistake-images");
  box.replaceChildren(...cell.images.map((img) => {
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated";
    paintGrey(canvas, img);
    return canvas;
  }));
  dialog.showModal();
}

// Where each run's validation loss was lowest and whether it overfits since; at the end, which
// epoch's model was saved. `runs`: [{name, epoch (its last epoch event), result (once done)}].
export function showOverfitting(list, runs) {
  const t = translate;
  const items = runs.map((run, i) => {
    if (!run || !run.epoch || !run.epoch.best_epoch) return null;
    const e = run.epoch, r = run.result;
    const li = document.createElement("li");
    li.style.setProperty("--run", runColour(i));
    const parts = [`★ ${t("lowest validation loss {l} at epoch {b}", undefined, { l: e.best_val_loss.toFixed(3), b: e.best_epoch })}`];
    if (e.overfitting_from) {
      li.className = "overfitting";
      parts.push(t("overfitting from epoch {b}: validation loss rises while training loss falls", undefined, { b: e.overfitting_from }));
    }
    if (r && r.stopped_early) parts.push(t("stopped early at epoch {s}", undefined, { s: r.stopped_early }));
    if (r && r.kept_epoch) {
      parts.push(r.kept_epoch === r.epochs_trained ? t("saved the last epoch ({k})", undefined, { k: r.kept_epoch })
        : t("saved the best epoch ({k})", undefined, { k: r.kept_epoch }));
    }
    li.textContent = (run.name ? `${run.name}: ` : "") + parts.join(" · ");
    return li;
  }).filter(Boolean);
  list.replaceChildren(...items);
  list.hidden = !items.length;
}

// One line per run of a learning-rate race, best first: ranked by test accuracy once the race is
// over, by validation accuracy while it runs (the last mini-batch says little: a run can score
// 100% on one batch and 38% on images it has not seen). Diverged runs come last.
// `ranked` false (the folds of a k-fold job): in their own order, none the best.
export function showRuns(list, runs, ranked = true) {
  list.replaceChildren();
  if (runs.length < 2) return;
  const score = (run) => (run.diverged ? -1 : run.test ?? run.val ?? null);
  const order = runs.map((run, i) => i);
  if (ranked) order.sort((a, b) => (score(runs[b]) ?? -0.5) - (score(runs[a]) ?? -0.5));
  const judged = ranked && runs.filter((run) => score(run) !== null && score(run) >= 0).length >= 2;
  order.forEach((i, place) => {
    const run = runs[i];
    const li = document.createElement("li");
    li.style.setProperty("--run", runColour(i));
    li.className = run.diverged ? "diverged" : place === 0 && judged ? "best" : "";
    const pct = (v) => `${Math.round(v * 100)}%`;
    const t = translate;
    const how = run.diverged ? t("diverged ✗")
      : run.test !== undefined ? t("test accuracy {p}", undefined, { p: pct(run.test) })
      : run.val !== undefined ? t("validation {p}", undefined, { p: pct(run.val) })
      : run.loss === undefined ? "…" : t("loss {l} · no validation yet", undefined, { l: run.loss.toFixed(3) });
    li.textContent = `${place === 0 && judged ? "★ " : ""}${run.label || `lr ${run.lr}`}: ${how}`;
    list.append(li);
  });
}
