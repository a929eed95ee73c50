// /neuron, "y = ax + b by trial" as lesson 002 does it: a target (3, 10), the slide's six trials
// (a, b), each with its prediction a·x + b and its error target − prediction, all computed by the
// server (POST /api/neuron/trials); any a, b or the target can be changed, a trial added, and the
// chosen trial handed to gradient descent (/descent, the line fit through the target).
import { sendJSON } from "./api.js";
import { $ } from "./dom.js";
import { fmt, term } from "./format.js";
import { t } from "./i18n.js";
import { COLOURS, Frame, canvasFont, chartText } from "./plot.js";

const MAX_TRIALS = 20;  // the server takes at most 20

// The address's form of the trials and target: "1:1,4:3" and "3:10".
export const pairs = (text) => {
  const out = text.split(",").map((p) => p.split(":").map(Number));
  return out.length && out.every((p) => p.length === 2 && p.every(Number.isFinite)) ? out : null;
};
export const showPairs = (list) => list.map(([a, b]) => `${a}:${b}`).join(",");

export class Trials {
  // S.trials: { x, y, tried: [[a, b], ...], chosen }; slides: the slide's own (the server's example).
  constructor(S, slides, saveURL) {
    Object.assign(this, { S, slides, saveURL, rows: [], generation: 0 });
    S.trials ||= { x: slides.x, y: slides.y, tried: structuredClone(slides.trials), chosen: 0 };
    $("trial-x").addEventListener("input", () => this.edit("x", $("trial-x").value));
    $("trial-y").addEventListener("input", () => this.edit("y", $("trial-y").value));
    $("trial-add").addEventListener("click", () => this.add());
    $("trial-slides").addEventListener("click", () => {
      Object.assign(S.trials, { x: slides.x, y: slides.y, tried: structuredClone(slides.trials), chosen: 0 });
      this.fill();
      this.update();
    });
    this.fill();
  }

  edit(key, text) {
    const v = Number(text);
    if (text === "" || !Number.isFinite(v)) return;
    this.S.trials[key] = v;
    this.update();
  }

  add() {
    const tr = this.S.trials;
    if (tr.tried.length >= MAX_TRIALS) return;
    tr.tried.push([...tr.tried[tr.tried.length - 1]]);
    tr.chosen = tr.tried.length - 1;
    this.fill();
    this.update();
    $("trial-rows").lastElementChild.querySelector("input").focus();
  }

  // One row per trial: its number, a and b to type in, and the server's prediction and error.
  fill() {
    const tr = this.S.trials;
    $("trial-x").value = tr.x;
    $("trial-y").value = tr.y;
    $("trial-rows").replaceChildren(...tr.tried.map((ab, i) => {
      const row = document.createElement("tr");
      row.innerHTML = "<th></th><td><input type=\"number\" step=\"any\"></td><td><input type=\"number\" step=\"any\"></td><td class=\"prediction\"></td><td class=\"error\"></td>";
      row.querySelector("th").textContent = i + 1;
      row.querySelectorAll("input").forEach((input, k) => {
        input.value = ab[k];
        input.setAttribute("aria-label", t("trial {n}: {name}", undefined, { n: i + 1, name: k ? "b" : "a" }));
        input.addEventListener("input", () => {
          const v = Number(input.value);
          if (input.value === "" || !Number.isFinite(v)) return;
          tr.tried[i][k] = v;
          this.update();
        });
        input.addEventListener("focus", () => { if (tr.chosen !== i) { tr.chosen = i; this.draw(); } });
      });
      row.addEventListener("click", () => { if (tr.chosen !== i) { tr.chosen = i; this.draw(); } });
      return row;
    }));
  }

  async update() {
    const tr = this.S.trials, generation = ++this.generation;
    this.saveURL();
    try {
      const out = await sendJSON("POST", "/api/neuron/trials", { x: tr.x, y: tr.y, trials: tr.tried });
      if (generation !== this.generation) return;
      this.rows = out.rows;
    } catch (err) {
      if (generation !== this.generation) return;
      this.rows = [];
      $("trial-verdict").textContent = err.message;
      return;
    }
    this.draw();
  }

  draw() {
    const tr = this.S.trials, rows = this.rows;
    $("trial-formula").textContent = `${fmt(tr.x)}a + b`;
    [...$("trial-rows").children].forEach((row, i) => {
      const r = rows[i];
      row.classList.toggle("chosen", i === tr.chosen);
      row.classList.toggle("hit", Boolean(r) && Math.abs(r.error) < 1e-9);
      row.querySelector(".prediction").textContent = r ? fmt(r.prediction) : "";
      row.querySelector(".error").textContent = r ? fmt(r.error) : "";
    });
    const r = rows[Math.min(tr.chosen, rows.length - 1)];
    if (!r) return;
    const n = Math.min(tr.chosen, rows.length - 1) + 1;
    $("trial-verdict").textContent = t("Trial {n}: {x} × {a} + {b} = {p}; error {y} − {p} = {e}", undefined,
      { n, x: fmt(tr.x), a: term(r.a, fmt), b: term(r.b, fmt), p: fmt(r.prediction), y: fmt(tr.y), e: fmt(r.error) })
      + (Math.abs(r.error) < 1e-9 ? " ✓" : "");
    const q = new URLSearchParams({ tab: "line_fit", data: `${tr.x}:${tr.y}`, start: `${r.a},${r.b}` });
    $("trials-descent").href = `/descent?${q}`;
    this.plot(r);
  }

  // The target, every trial's line (faint) and the chosen one's, with its error as a dashed gap.
  plot(chosen) {
    const tr = this.S.trials;
    const xs = [Math.min(0, tr.x - 1), Math.max(tr.x + 2, 1)];
    const ends = this.rows.flatMap((r) => xs.map((x) => r.a * x + r.b));
    const lo = Math.min(0, tr.y - 2, ...ends.filter(Number.isFinite)), hi = Math.max(tr.y + 2, ...ends.filter(Number.isFinite));
    const frame = new Frame($("trial-plot"), xs, [Math.max(lo, tr.y - 20), Math.min(hi, tr.y + 20)]);
    frame.axes("x", "y");
    frame.clipped(() => {
      for (const r of this.rows) if (r !== chosen) frame.line(xs.map((x) => [x, r.a * x + r.b]), "#bbb", 1.5);
      frame.line(xs.map((x) => [x, chosen.a * x + chosen.b]), COLOURS[0], 4);
      frame.line([[tr.x, tr.y], [tr.x, chosen.prediction]], COLOURS[1], 3, [5, 4]);
    });
    frame.marker([tr.x, tr.y], "#222", "square", 9);
    const ctx = frame.ctx;
    ctx.font = canvasFont(Math.max(1, 20 / chartText().size), "bold");
    ctx.fillStyle = "#222";
    ctx.textAlign = "left";
    ctx.fillText(`(${fmt(tr.x)}, ${fmt(tr.y)})`, frame.x(tr.x) + 12, frame.y(tr.y) - 10);
  }
}
