// "Try to break it": the drawing turned, moved, made thicker or thinner, blurred or sprinkled with
// noise before it is sent, so a class finds where the network stops reading it. Only the frame
// sent changes; the drawing on the pad stays as drawn.
export const DEFAULTS = { rotate: 0, dx: 0, dy: 0, thickness: 1, noise: 0, blur: 0 };

export function isIdentity(t) {
  return Object.entries(DEFAULTS).every(([k, v]) => Number(t[k]) === v);
}

// Paint the strokes (through `paint(canvas, widthScale)`) onto `frame`, changed by `t`.
export function transformFrame(frame, paint, t) {
  const s = frame.width, plain = document.createElement("canvas");
  plain.width = plain.height = s;
  paint(plain, t.thickness);
  const ctx = frame.getContext("2d", { willReadFrequently: true });  // the noise reads it back, every frame
  ctx.save();
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, s, s);
  ctx.filter = t.blur > 0 ? `blur(${(t.blur * s) / 280}px)` : "none";
  ctx.translate(s / 2 + (t.dx / 100) * s, s / 2 + (t.dy / 100) * s);
  ctx.rotate((t.rotate * Math.PI) / 180);
  ctx.drawImage(plain, -s / 2, -s / 2);
  ctx.restore();
  if (t.noise > 0) {
    const img = ctx.getImageData(0, 0, s, s);
    let seed = 12345;  // the same noise every frame: the class sees the drawing change, not the dice
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let i = 0; i < img.data.length; i += 4) {
      if (random() < t.noise / 100) {
        const v = random() < 0.5 ? 0 : 255;
        img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
      }
    }
    ctx.putImageData(img, 0, 0);
  }
}
