// What the training page shows: curves (Chart.js from npm), progress, test images with guesses,
// the confusion matrix and its misclassified images. It only reads events.
import { t as translate } from "./i18n.js";
import { paintGrey } from "./render.js";
import { COLOURS } from "./plot.js";

// Okabe-Ito: distinguishable with every common colour-vision deficiency.
const SMOOTH = 0.8;

function lineChart(canvas, yTitle, yMax) {
  return new window.Chart(canvas, {
    type: "line",
    data: { datasets: [] },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      scales: {
        x: { type: "linear", title: { display: true, text: translate("step (mini-batches)") }, ticks: { font: { size: 14 } } },
        y: { min: 0, max: yMax, title: { display: true, text: yTitle }, ticks: { font: { size: 14 } } },
      },
      plugins: { legend: { labels: { font: { size: 14 }, boxWidth: 24 } } },
      elements: { point: { radius: 0 } },
    },
  });
}

export class Curves {
  constructor(lossCanvas, accCanvas) {
    this.loss = lineChart(lossCanvas, "loss", undefined);
    this.acc = lineChart(accCanvas, "accuracy", 1);
    this.smoothed = {};
  }

  reset(learningRates) {
    for (const chart of [this.loss, this.acc]) {
      chart.data.datasets = learningRates.flatMap((lr, run) => {
        const name = learningRates.length > 1 ? ` (lr ${lr})` : "";
        return [
          { label: `train${name}`, data: [], borderColor: COLOURS[run], borderWidth: 3 },
          { label: `validation${name}`, data: [], borderColor: COLOURS[run], borderWidth: 3,
            borderDash: [8, 5], pointRadius: 5, pointStyle: "rectRot", showLine: true },
        ];
      });
      chart.update();
    }
    this.smoothed = {};
  }

  progress(e) {
    const s = this.smoothed[e.run] || { loss: e.loss, acc: e.accuracy };
    s.loss = SMOOTH * s.loss + (1 - SMOOTH) * e.loss;
    s.acc = SMOOTH * s.acc + (1 - SMOOTH) * e.accuracy;
    this.smoothed[e.run] = s;
    this.push(this.loss, 2 * e.run, e.step, Math.min(s.loss, 10));
    this.push(this.acc, 2 * e.run, e.step, s.acc);
  }

  epoch(e, batches) {
    this.push(this.loss, 2 * e.run + 1, e.epoch * batches, Math.min(e.val_loss, 10));
    this.push(this.acc, 2 * e.run + 1, e.epoch * batches, e.val_accuracy);
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

const clock = (seconds) => {
  if (seconds == null || !isFinite(seconds)) return "–";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};

export function showProgress(fill, text, e, epochs) {
  fill.style.width = `${(100 * e.step) / e.total_steps}%`;
  text.textContent = translate("Epoch {e}/{E} · batch {b}/{B} · step {s}/{S} · lr {lr} · ETA {eta}", undefined, {
    e: e.epoch, E: epochs, b: e.batch, B: e.batches, s: e.step, S: e.total_steps,
    lr: Number(e.learning_rate.toPrecision(3)), eta: clock(e.eta) });
}

const image28 = (base64) => ({ width: 28, height: 28, base64 });

export function showSamples(box, e, labels) {
  box.replaceChildren();
  e.images.forEach((img, i) => {
    const right = e.labels[i] === e.guesses[i];
    const figure = document.createElement("figure");
    figure.className = right ? "right" : "wrong";
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated";
    paintGrey(canvas, image28(img));
    const caption = document.createElement("figcaption");
    caption.textContent = right ? `✓ ${labels[e.guesses[i]]}` : `✗ ${labels[e.guesses[i]]} (is ${labels[e.labels[i]]})`;
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
    (cell.images.length < result.confusion[t][p] ? ` (first ${cell.images.length})` : "");
  const box = dialog.querySelector("#mistake-images");
  box.replaceChildren(...cell.images.map((img) => {
    const canvas = document.createElement("canvas");
    canvas.className = "pixelated";
    paintGrey(canvas, image28(img));
    return canvas;
  }));
  dialog.showModal();
}

// One line per run of a learning-rate race, best first: ranked by test accuracy once the race is
// over, by validation accuracy while it runs (the last mini-batch says little: a run can score
// 100% on one batch and 38% on images it has not seen). Diverged runs come last.
export function showRuns(list, runs) {
  list.replaceChildren();
  if (runs.length < 2) return;
  const score = (run) => (run.diverged ? -1 : run.test ?? run.val ?? null);
  const order = runs.map((run, i) => i).sort((a, b) => (score(runs[b]) ?? -0.5) - (score(runs[a]) ?? -0.5));
  const judged = runs.filter((run) => score(run) !== null && score(run) >= 0).length >= 2;
  order.forEach((i, place) => {
    const run = runs[i];
    const li = document.createElement("li");
    li.style.setProperty("--run", COLOURS[i]);
    li.className = run.diverged ? "diverged" : place === 0 && judged ? "best" : "";
    const pct = (v) => `${Math.round(v * 100)}%`;
    const t = translate;
    const how = run.diverged ? t("diverged ✗")
      : run.test !== undefined ? t("test accuracy {p}", undefined, { p: pct(run.test) })
      : run.val !== undefined ? t("validation {p}", undefined, { p: pct(run.val) })
      : run.loss === undefined ? "…" : t("loss {l} · no validation yet", undefined, { l: run.loss.toFixed(3) });
    li.textContent = `${place === 0 && judged ? "★ " : ""}lr ${run.lr}: ${how}`;
    list.append(li);
  });
}
