// Drawing helpers shared by pages: grey images from arrays, probability bars.

// A grey image from the server, either compact {width, height, base64} or rows of 0..255 ints.
export function greyImage(value) {
  if (Array.isArray(value)) {
    const height = value.length, width = height ? value[0].length : 0;
    return { width, height, data: Uint8Array.from(value.flat()) };
  }
  const raw = atob(value.base64);
  return { width: value.width, height: value.height, data: Uint8Array.from(raw, (c) => c.charCodeAt(0)) };
}

// Paint a grey image into a canvas, white ink on black, the way the network sees it.
// The canvas takes the image's size; returns its 2-D context for overlays.
export function paintGrey(canvas, value) {
  const { width, height, data } = greyImage(value);
  canvas.width = Math.max(width, 1);
  canvas.height = Math.max(height, 1);
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(canvas.width, canvas.height);
  data.forEach((v, i) => {
    img.data.set([v, v, v, 255], i * 4);
  });
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
    update(probabilities) {
      const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
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

export const percent = (p) => `${Math.round(p * 100)}%`;
