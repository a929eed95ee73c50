// Drawing helpers shared by pages: the one reader of the server's images and painting them,
// probability bars, number grids.

// The one reader of the server's image form (engine/imageio.py encode): {width, height, channels,
// base64}, the bytes channels first: plane after plane (grey: one, colour: red, green, blue; feature
// maps: one each), each plane row by row. Rows of 0..255 ints (/api/predict's readable lists) read as
// one plane. Returns {width, height, channels, data: all the bytes, plane(c): channel c's bytes}.
export function decodeImage(value) {
  let width, height, channels, data;
  if (Array.isArray(value)) {
    height = value.length;
    width = height ? value[0].length : 0;
    channels = 1;
    data = Uint8Array.from(value.flat());
  } else {
    ({ width, height } = value);
    channels = value.channels ?? 1;
    data = Uint8Array.from(atob(value.base64), (c) => c.charCodeAt(0));
    if (data.length !== width * height * channels) {
      throw new Error(`image of ${channels}x${height}x${width} has ${data.length} bytes`);
    }
  }
  const size = width * height;
  return { width, height, channels, data, plane: (c) => data.subarray(c * size, (c + 1) * size) };
}

// Paint a grey image from the server into a canvas, white ink on black, the way the network sees
// it. The canvas takes the image's size; returns its 2-D context for overlays.
export function paintGrey(canvas, value) {
  const image = decodeImage(value), grey = image.plane(0);
  return paintPixels(canvas, image.width, image.height, (i) => [grey[i], grey[i], grey[i]]);
}

// Paint a server image: colour (3 planes) as colour, anything else as grey.
export function paintImage(canvas, value) {
  return !Array.isArray(value) && value.channels === 3 ? paintColour(canvas, value) : paintGrey(canvas, value);
}

// Paint a colour image: the server's (3 planes) or (3, H, W) rows of floats 0..1, as the network
// reads a photo. With `only` (0 red, 1 green, 2 blue) just that channel, in its own colour: how
// the slides show channels.
export function paintColour(canvas, chw, only = null) {
  let width, height, at;
  if (Array.isArray(chw)) {  // rows of floats 0..1, channel by channel
    height = chw[0].length; width = chw[0][0].length;
    at = (c, i) => Math.round(255 * chw[c][Math.floor(i / width)][i % width]);
  } else {
    const image = decodeImage(chw);
    ({ width, height } = image);
    at = (c, i) => image.data[c * width * height + i];
  }
  return paintPixels(canvas, width, height, (i) => (only === null ? [at(0, i), at(1, i), at(2, i)]
    : [0, 1, 2].map((c) => (c === only ? at(c, i) : 0))));
}

function paintPixels(canvas, width, height, rgbAt) {
  canvas.width = Math.max(width, 1);
  canvas.height = Math.max(height, 1);
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < width * height; i++) img.data.set([...rgbAt(i), 255], i * 4);
  ctx.putImageData(img, 0, 0);
  return ctx;
}

// Show a small canvas enlarged to fill its parent's box, keeping its aspect ratio.
export function fitToParent(canvas) {
  const box = canvas.parentElement.getBoundingClientRect();
  const k = Math.min(box.width / canvas.width, box.height / canvas.height);
  canvas.style.width = `${canvas.width * k}px`;
  canvas.style.height = `${canvas.height * k}px`;
}

export function clearCanvas(canvas) {
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
}

// Build one row per label once; `update` then only moves the bars.
export function createBars(list, labels) {
  list.replaceChildren();
  list.classList.toggle("wide", labels.some((l) => l.length > 2));
  const rows = labels.map((label) => {
    const li = document.createElement("li");
    li.className = "bar";
    li.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct"></span>';
    li.querySelector(".name").textContent = label;
    list.append(li);
    return li;
  });
  return {
    update(probabilities, markTop = true) {
      const top = probabilities && markTop ? probabilities.indexOf(Math.max(...probabilities)) : -1;
      rows.forEach((li, i) => {
        const p = probabilities ? probabilities[i] : 0;
        li.querySelector(".fill").style.width = `${(p * 100).toFixed(1)}%`;
        li.querySelector(".pct").textContent = probabilities ? `${Math.round(p * 100)}%` : "";
        li.classList.toggle("top", i === top);
        li.setAttribute("aria-label", `${labels[i]}: ${Math.round(p * 100)} percent`);
      });
    },
  };
}


// Models that read 28x28 grey digits or clothes (not a project's colour photos): for the pages
// whose drawings, samples and maps are 28x28.
export const readsGrey = (m) => !m.input_shape || m.input_shape[0] === 1;

const fmt3 = (v) => String(Number(v.toFixed(3)));

// A table of number inputs bound to `grid` (rows of numbers); onChange after each edit.
export function editableGrid(table, grid, onChange) {
  table.replaceChildren(...grid.map((row, r) => {
    const tr = document.createElement("tr");
    row.forEach((v, c) => {
      const td = document.createElement("td");
      const input = document.createElement("input");
      input.type = "number";
      input.value = fmt3(v);
      input.setAttribute("aria-label", `row ${r + 1}, column ${c + 1}`);
      input.addEventListener("change", () => { grid[r][c] = Number(input.value) || 0; onChange(); });
      td.append(input);
      tr.append(td);
    });
    return tr;
  }));
}

export function numberGrid(table, grid, shown = Infinity, cls = () => "") {
  let i = 0;
  table.replaceChildren(...grid.map((row) => {
    const tr = document.createElement("tr");
    for (const v of row) {
      const td = document.createElement("td");
      td.textContent = i <= shown ? fmt3(v) : "";
      td.className = cls(i);
      i += 1;
      tr.append(td);
    }
    return tr;
  }));
}

// Diverging colours for one plane of a decoded image (decodeImage, or any {width, height, data}):
// blue below zero, white at zero, orange above (128 = zero).
export function paintDiverging(canvas, image, channel = 0) {
  const { width: w, height: h, data } = image, offset = channel * w * h;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const t = (data[offset + i] - 128) / 127.5;
    const [r, g, b] = t < 0 ? [255 + t * 255, 255 + t * 141, 255 + t * 77] : [255 - t * 25, 255 - t * 96, 255 - t * 255];
    img.data.set([r, g, b, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return ctx;
}
