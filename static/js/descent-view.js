// What the descent page draws: the loss curve, the line fit, contour bands with paths, the
// split-the-data boundary, the loss per step and the numbers. It reads the page state only.
import { t, tn } from "./i18n.js";
import { COLOURS, Frame, bands, lossPlot } from "./plot.js";
import { fmt } from "./format.js";
import { decodeImage } from "./render.js";
import { $ } from "./dom.js";
import { judge } from "./descent-verdict.js";


// One exercise's plot, loss curve and numbers; returns the plot's frame (for pointer mapping).
export function drawExercise(S, view, lineData) {
  $("offplot").textContent = "";
  $("main-plot").classList.remove("equal");
  $("neurons").hidden = true;
  const frame = S.tab === "parabola" ? drawCurve(S, view) : S.tab === "line_fit" ? drawLine(S, lineData) : drawSurface(S, view);
  lossPlot($("loss-plot"), S.runs, S.n);
  showRunNumbers(S, view);
  return frame;
}

function showNumbers(pairs) {
  $("numbers").replaceChildren(...pairs.flatMap(([k, v]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
}

const at = (S, run) => Math.min(S.n, run.path.length - 1);

function drawCurve(S, view) {
  const top = Math.max(...S.surface.loss);
  const frame = new Frame($("main-plot"), view[0], [0, top]);
  frame.axes("w", t("loss L(w)"));
  frame.line(S.surface.x.map((x, i) => [x, S.surface.loss[i]]), "#555", 3);
  const away = [];
  for (const r of S.runs) {
    const pts = r.path.slice(0, at(S, r) + 1).map((p, i) => [p[0], r.loss[i]]);
    frame.clipped(() => {
      frame.line(pts, r.colour, 2, [6, 4]);
      pts.slice(0, -1).forEach((p) => frame.marker(p, r.colour, "circle", 5));
    });
    const [w, loss] = pts[pts.length - 1];
    if (frame.pinned([w, loss], r.colour)) away.push(`w = ${fmt(w)}, loss ${fmt(loss)}`);
  }
  // a ball that left the plot stays in view at its edge, and says where it really is
  $("offplot").textContent = away.length ? t("Off the plot (shown at the edge, the arrow points to it): {where}", undefined, { where: away.join("; ") }) : "";
  return frame;
}

function drawLine(S, d) {
  if (!S.drag || !S.lineView) {  // the axes stay put while a point is dragged
    S.lineView = [[0, Math.max(...d.x) + 2], [Math.min(0, ...d.y) - 1, Math.max(...d.y) + 3]];
  }
  const [xs, ys] = S.lineView;
  const frame = new Frame($("main-plot"), xs, ys);
  frame.axes("x", "y");
  const [a, b] = S.runs[0].path[at(S, S.runs[0])];
  frame.line([[xs[0], a * xs[0] + b], [xs[1], a * xs[1] + b]], COLOURS[0], 4);
  d.x.forEach((x, i) => {
    frame.line([[x, d.y[i]], [x, a * x + b]], COLOURS[1], 2, [4, 4]);  // the errors
    frame.marker([x, d.y[i]], "#222", "square", 8);
  });
  return frame;
}

function drawSurface(S, view) {
  // one unit is as long across as up (a round bowl looks round), as far as the space allows
  $("main-plot").style.setProperty("--aspect", (view[0][1] - view[0][0]) / (view[1][1] - view[1][0]));
  $("main-plot").classList.add("equal");
  const frame = new Frame($("main-plot"), view[0], view[1]);
  const flat = S.surface.loss.flat();
  frame.heatmap(S.surface.loss, bands(Math.min(...flat), Math.max(...flat)));
  const names = paramNames(S);
  frame.axes(...names);
  const away = [];
  for (const r of S.runs) {
    const pts = r.path.slice(0, at(S, r) + 1);
    frame.clipped(() => frame.line(pts, r.colour, 3));
    const ball = pts[pts.length - 1];
    if (frame.pinned(ball, r.colour, 8)) away.push(ball.map((v, k) => `${names[k]} = ${fmt(v)}`).join(", "));
  }
  frame.marker(S.runs[0].path[0], "#222", "square", 8);
  // a ball that left the plot stays in view at its edge, and says where it really is
  $("offplot").textContent = away.length ? t("Off the plot (shown at the edge, the arrow points to it): {where}", undefined, { where: away.join("; ") }) : "";
  return frame;
}

const paramNames = (S) => (S.tab === "line_fit" || S.problem === "line_fit" && S.tab === "surface" ? ["a", "b"]
  : S.tab === "parabola" ? ["w"] : ["x", "y"]);

function showRunNumbers(S, view) {
  const lines = [];
  const names = paramNames(S);
  const verdicts = [];
  for (const r of S.runs) {
    const i = at(S, r);
    if (S.runs.length === 1) {
      r.path[i].forEach((v, k) => lines.push([names[k], fmt(v)]));
      lines.push([t("gradient"), `(${r.gradient[i].map(fmt).join(", ")})`]);
      lines.push([S.tab === "line_fit" ? t("loss (MSE)") : t("loss"), fmt(r.loss[i])]);
    }
    verdicts.push(verdict(S, r, i, names, view));
  }
  showNumbers(lines);
  $("verdict").textContent = verdicts.map((v) => v.text).filter(Boolean).join("  ·  ");
  $("verdict").dataset.state = verdicts.some((v) => v.state === "diverged" || v.state === "diverging") ? "diverged" : "";
}

// The run's verdict at step i (descent-verdict.js), in the page's language; off the plot means
// outside the drawn ranges (for the 1-D curve, the loss too).
function verdict(S, r, i, names, view) {
  const top = S.tab === "parabola" ? Math.max(...S.surface.loss) : null;
  const off = (p, loss) => S.tab !== "line_fit"  // the line's plot shows the points, not (a, b)
    && (p.some((v, k) => v < view[k][0] || v > view[k][1]) || (top !== null && loss > top));
  const v = judge(r, i, { names, off });
  const text = v.plural ? tn(v.values.n, ...v.plural, v.values) : v.text && t(v.text, undefined, v.values);
  const who = S.runs.length > 1 ? `${r.optimizer} lr ${r.lr}: ` : "";
  return { text: text && who + text, state: v.state };
}

export function drawSplit(S) {
  const sp = S.split;
  $("main-plot").style.setProperty("--aspect", 1);  // the plane as it is: circles look round
  $("main-plot").classList.add("equal");
  const frame = new Frame($("main-plot"), [-1.2, 1.2], [-1.2, 1.2]);
  if (sp.grid) {
    const grid = decodeImage(sp.grid), bytes = grid.plane(0), n = grid.width;
    const rows = Array.from({ length: grid.height }, (_, r) => Array.from(bytes.slice(r * n, (r + 1) * n)));
    frame.heatmap(rows, (v) => {  // blue (class 0) to orange (class 1), pale near 50%
      const share = v / 255, strength = Math.abs(share - 0.5) * 2;
      return share < 0.5 ? `rgba(0, 114, 178, ${0.08 + strength * 0.45})` : `rgba(230, 159, 0, ${0.08 + strength * 0.45})`;
    });
  }
  const regression = sp.task === "regression";
  frame.axes(regression ? "x" : "x₁", regression ? "y" : "x₂");
  const points = sp.dataset === "mine" ? sp.mine : sp.points;
  if (regression) {  // the points to fit, and the curve the network draws through them
    for (const [x, y] of points) frame.marker([x, y], "#222", "square", 6);
    if (sp.curve) frame.clipped(() => frame.line(sp.curve, COLOURS[0], 4));
  } else {
    for (const [x, y, label] of points) frame.marker([x, y], label ? COLOURS[1] : COLOURS[0], label ? "triangle" : "circle", 6);
  }
  lossPlot($("loss-plot"), [{ loss: sp.losses, colour: COLOURS[0] }], sp.losses.length);
  showNumbers(regression ? [[t("loss (MSE)"), fmt(sp.losses[sp.losses.length - 1])]]
    : [[t("loss"), fmt(sp.losses[sp.losses.length - 1])],
      [t("accuracy"), sp.accuracy === null ? "–" : `${Math.round(sp.accuracy * 100)}%`]]);
  $("hint").textContent = sp.dataset !== "mine" ? ""
    : regression ? t("Click the plot to add points: the network draws a curve through them.")
      : t("Click the plot to add points; choose their class on the left.");
  drawNeurons(sp.neurons);
  return frame;
}

// Each hidden neuron's own map of the plane (TensorFlow Playground's signature): a row of small
// squares per layer, blue where the neuron's output is low, orange where it is high.
function drawNeurons(neurons) {
  $("neurons").hidden = !neurons || !neurons.layers.length;
  if ($("neurons").hidden) return;
  $("neuron-layers").replaceChildren(...neurons.layers.map((layer, l) => {
    const row = document.createElement("div");
    row.className = "neuron-row";
    row.setAttribute("aria-label", t("Hidden layer {n}", undefined, { n: l + 1 }));
    for (const map of layer) {
      const canvas = document.createElement("canvas");
      canvas.width = map.width;
      canvas.height = map.height;
      const ctx = canvas.getContext("2d"), img = ctx.createImageData(map.width, map.height);
      decodeImage(map).plane(0).forEach((v, i) => {
        const share = v / 255, strength = Math.abs(share - 0.5) * 2, mix = 0.15 + strength * 0.85;
        const [r, g, b] = share < 0.5 ? [0, 114, 178] : [230, 159, 0];
        img.data.set([255 + (r - 255) * mix, 255 + (g - 255) * mix, 255 + (b - 255) * mix, 255], i * 4);
      });
      ctx.putImageData(img, 0, 0);
      canvas.className = "neuron";
      row.append(canvas);
    }
    return row;
  }));
}

