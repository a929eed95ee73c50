// The "train" curve of the training lab: each point the mean over a window of training images
// (not of messages: a short run sends few, and a mean over messages lags far behind). Pure: no page.

// WINDOW images at most, and never more than the last quarter of the images seen so far: the
// value shown is never older than the run's last quarter. When one message alone covers more than
// that (a run of a few messages), the value is shown but `old` says so.
export const WINDOW = 2000;

// points: one run's progress so far, in order: [{step, images, loss, accuracy}] (images: how many
// training images the message's means are over). Returns the smoothed point at the last step:
// {step, loss, accuracy, images (in the window), since (the step the window starts after), old}.
export function smoothTrain(points, window = WINDOW) {
  if (!points.length) return null;
  const seen = points.reduce((sum, p) => sum + (p.images || 1), 0);
  const limit = Math.min(window, seen / 4);
  let images = 0, loss = 0, accuracy = 0, i = points.length - 1;
  for (; i >= 0; i--) {
    const p = points[i], n = p.images || 1;
    if (images > 0 && images + n > limit) break;  // the last message always counts, whole
    images += n;
    loss += p.loss * n;
    accuracy += p.accuracy * n;
  }
  const last = points[points.length - 1];
  return { step: last.step, loss: loss / images, accuracy: accuracy / images, images,
           since: i >= 0 ? points[i].step : 0, old: images > limit };
}
