// An image is numbers: what the network read, shown as its grid of 0-255 values, one channel at a
// time for colour. A window of the grid (zoom: how many cells across; click the small picture or
// use the arrows to move it) is a table of the very bytes the server sent (render.js decodeImage),
// which are the network's input tensor times 255.
import { decodeImage } from "./render.js";
import { t as tr } from "./i18n.js";

const CHANNELS = ["red", "green", "blue", "alpha"];
const ZOOMS = [7, 14, 28];

// The image form, or the network's input as rows of floats 0..1 (2-D grey, or 3-D channels
// first; values times 255, rounded, as the server turns them into bytes): always
// {width, height, channels, plane(c)} of 0..255 values.
export function readNumbers(value) {
  if (!Array.isArray(value)) return decodeImage(value);
  const planes = Array.isArray(value[0][0]) ? value : [value];
  const height = planes[0].length, width = planes[0][0].length, size = width * height;
  const data = Uint8Array.from(planes.flat(2), (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
  return { width, height, channels: planes.length, data, plane: (c) => data.subarray(c * size, (c + 1) * size) };
}

// A "Show as numbers" fold in `host`; `show(value)` gives it the image (again after each answer).
export function numbersFold(host, { across = 14, label = "" } = {}) {
  const fold = document.createElement("details");
  fold.className = "as-numbers";
  fold.innerHTML = `<summary></summary><div class="numbers-controls"><label class="numbers-channel"><span></span> <select></select></label>
    <label class="numbers-zoom"><span></span> <select></select></label>
    <span class="numbers-move"><button type="button" data-move="-1,0">←</button><button type="button" data-move="0,-1">↑</button><button type="button" data-move="0,1">↓</button><button type="button" data-move="1,0">→</button></span></div>
    <div class="numbers-body"><div class="numbers-map"><canvas class="pixelated"></canvas><span class="numbers-window"></span></div>
    <div class="numbers-scroll"><table class="numbers-grid"></table></div></div><p class="numbers-where hint"></p><p class="numbers-note hint"></p>`;
  fold.querySelector("summary").textContent = tr("Show as numbers (0–255)");
  fold.querySelector(".numbers-channel span").textContent = tr("Channel");
  fold.querySelector(".numbers-zoom span").textContent = tr("Cells across");
  fold.querySelector(".numbers-note").textContent = tr("These are the numbers the network reads: each is its input times 255. Dark is 0, bright is 255.");
  if (label) fold.dataset.label = label;
  for (const b of fold.querySelectorAll("[data-move]")) b.setAttribute("aria-label", tr("Move the window"));
  host.append(fold);
  const S = { image: null, channel: 0, across, row: 0, col: 0 };
  const zoom = fold.querySelector(".numbers-zoom select");
  for (const n of ZOOMS) zoom.append(new Option(String(n), String(n), false, n === across));
  const channel = fold.querySelector(".numbers-channel select");
  const canvas = fold.querySelector("canvas"), table = fold.querySelector("table");

  function clampWindow() {
    const n = Math.min(S.across, S.image.width), m = Math.min(S.across, S.image.height);
    S.col = Math.max(0, Math.min(S.col, S.image.width - n));
    S.row = Math.max(0, Math.min(S.row, S.image.height - m));
    return [m, n];
  }

  function render() {
    if (!S.image || !fold.open) return;
    const { width, height, channels } = S.image;
    const [rows, cols] = clampWindow();
    const plane = S.image.plane(S.channel);
    const tint = channels >= 3 ? S.channel : -1;
    table.dataset.row = String(S.row);
    table.dataset.col = String(S.col);
    table.dataset.channel = String(S.channel);
    table.style.setProperty("--cells", String(cols));
    table.replaceChildren(...Array.from({ length: rows }, (_, r) => {
      const tr = document.createElement("tr");
      for (let c = 0; c < cols; c++) {
        const v = plane[(S.row + r) * width + S.col + c];
        const td = document.createElement("td");
        td.textContent = String(v);
        const rgb = tint < 0 || tint > 2 ? [v, v, v] : [0, 1, 2].map((k) => (k === tint ? v : 0));
        td.style.background = `rgb(${rgb.join(",")})`;
        td.style.color = 0.3 * rgb[0] + 0.59 * rgb[1] + 0.11 * rgb[2] > 140 ? "#111" : "#f4f4f4";  // readable on its colour
        tr.append(td);
      }
      return tr;
    }));
    const box = fold.querySelector(".numbers-window");
    Object.assign(box.style, { left: `${(100 * S.col) / width}%`, top: `${(100 * S.row) / height}%`,
                               width: `${(100 * cols) / width}%`, height: `${(100 * rows) / height}%` });
    fold.querySelector(".numbers-where").textContent = tr("Rows {r1}–{r2} and columns {c1}–{c2} of {h}×{w}", undefined, {
      r1: S.row + 1, r2: S.row + rows, c1: S.col + 1, c2: S.col + cols, h: height, w: width })
      + (channels > 1 ? ` · ${tr(`${CHANNELS[S.channel]} channel`)}` : "");
  }

  function paintMap() {  // the whole image, small: the chosen channel in its own colour
    const { width, height, channels } = S.image, plane = S.image.plane(S.channel);
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(width, height);
    const tint = channels >= 3 && S.channel < 3 ? S.channel : -1;
    for (let i = 0; i < width * height; i++) {
      const v = plane[i];
      img.data.set(tint < 0 ? [v, v, v, 255] : [tint === 0 ? v : 0, tint === 1 ? v : 0, tint === 2 ? v : 0, 255], i * 4);
    }
    ctx.putImageData(img, 0, 0);
  }

  zoom.addEventListener("change", () => {
    const centre = [S.row + S.across / 2, S.col + S.across / 2];
    S.across = Number(zoom.value);
    S.row = Math.round(centre[0] - S.across / 2);
    S.col = Math.round(centre[1] - S.across / 2);
    render();
  });
  channel.addEventListener("change", () => { S.channel = Number(channel.value); paintMap(); render(); });
  for (const b of fold.querySelectorAll("[data-move]")) b.addEventListener("click", () => {
    const [dx, dy] = b.dataset.move.split(",").map(Number);
    const step = Math.max(1, Math.floor(S.across / 2));
    S.col += dx * step;
    S.row += dy * step;
    render();
  });
  canvas.addEventListener("click", (e) => {
    const r = canvas.getBoundingClientRect();
    S.col = Math.round(((e.clientX - r.left) / r.width) * S.image.width - S.across / 2);
    S.row = Math.round(((e.clientY - r.top) / r.height) * S.image.height - S.across / 2);
    render();
  });
  fold.addEventListener("toggle", render);

  return {
    element: fold,
    show(value) {
      S.image = value && readNumbers(value);
      fold.hidden = !S.image;
      if (!S.image) return;
      const names = S.image.channels >= 3 ? CHANNELS.slice(0, S.image.channels) : [];
      if (channel.options.length !== names.length) {
        channel.replaceChildren(...names.map((name, c) => new Option(tr(name), String(c))));
        S.channel = Math.min(S.channel, Math.max(0, names.length - 1));
      }
      channel.value = String(S.channel);
      fold.querySelector(".numbers-channel").hidden = names.length === 0;
      paintMap();
      render();
    },
  };
}
