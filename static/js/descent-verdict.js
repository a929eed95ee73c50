// What a run of gradient descent has done up to a step, in words that stay true for SGD, momentum
// and Adam on every surface. Pure: no page, no language (the caller translates the English text).
//
// A rising loss is not divergence by itself: momentum swings past the minimum and climbs the
// other side for steps on end before it comes back (round bowl, momentum 0.9, lr 0.08: up at
// step 30, at the minimum at step 126). So the trend is judged on the envelope of the loss (its
// highest point in the recent half of the run against the earlier half), and a claim about where
// the run is going ("diverging", "getting there") is only made when the run's own end, computed
// by the server ahead of what is shown, bears it out; until that end is known, only what was seen
// is described.
import { fmt } from "./format.js";

export const TEXT = {
  reached: ["reached the minimum in {n} step ✓", "reached the minimum in {n} steps ✓"],
  jumped: ["diverged after {n} step ✗ — it jumped to {where}, where the loss is {loss} ({times} × its start): the learning rate is too large",
    "diverged after {n} steps ✗ — the last step jumped to {where}, where the loss is {loss} ({times} × its start): the learning rate is too large"],
  jumpedOff: ["diverged after {n} step ✗ — it jumped off the plot to {where}, where the loss is {loss} ({times} × its start): the learning rate is too large",
    "diverged after {n} steps ✗ — the last step jumped off the plot to {where}, where the loss is {loss} ({times} × its start): the learning rate is too large"],
  overflow: "step {n} overflowed ✗ — its numbers grew too large to compute (it started from {where}): the learning rate is too large",
  divergingEvery: "diverging ✗ — the loss grows at every step: the learning rate is too large",
  divergingGrows: "diverging ✗ — the loss keeps growing: the learning rate is too large",
  divergingSwings: "diverging ✗ — the loss swings up and down, ever higher: the learning rate is too large",
  divergesLater: "the loss falls for now, but this learning rate makes the run diverge later ✗",
  overshooting: "overshooting back and forth, but getting closer ↔",
  slow: "slow but getting there ↘",
  fast: "getting there fast ↘",
  risesForNow: "the loss rises for now, but it comes back down and reaches the minimum ↺",
  swingsCloser: "up and down, but getting closer ↘",
  oscillating: "oscillating around the minimum ↔",
  grew: "the loss grew at each of the last 3 steps ↗",
  fallingSlowly: "the loss falls, slowly ↘",
  fallingFast: "the loss falls fast ↘",
};

const where = (point, names) => point.map((v, k) => `${names[k]} = ${fmt(v)}`).join(", ");

// run: { path, loss, gradient, status: running | converged | diverged, minimum, overflow }, as
// the server answers; i: the step shown; names: the parameters' names; off(point, loss): whether
// a point is outside the plot. Returns { text, plural: [one, other] | null, values, state } where
// state is "converged", "diverged", "diverging" or "".
export function judge(run, i, { names = ["x", "y"], off = () => false } = {}) {
  const last = run.path.length - 1;
  i = Math.min(i, last);
  const said = (text, values = {}, state = "") => ({ text, plural: null, values, state });
  const counted = ([one, other], values, state) => ({ text: values.n === 1 ? one : other, plural: [one, other], values, state });
  const minimum = run.minimum || 0;
  const gap = run.loss.slice(0, i + 1).map((v) => Math.max(v - minimum, 0));
  if (i === last && run.status === "converged") return counted(TEXT.reached, { n: i }, "converged");
  if (i === last && run.status === "diverged") {
    if (run.overflow) return said(TEXT.overflow, { n: i + 1, where: where(run.path[i], names) }, "diverged");
    const point = run.path[i], loss = run.loss[i];
    const times = gap[0] > 0 ? fmt(gap[i] / gap[0]) : "–";
    return counted(off(point, loss) ? TEXT.jumpedOff : TEXT.jumped,
      { n: i, where: where(point, names), loss: fmt(loss), times }, "diverged");
  }
  if (i < 3) return said("");

  const up = (k) => gap[k] > gap[k - 1], down = (k) => gap[k] < gap[k - 1];
  const rising = [i, i - 1, i - 2].every(up), falling = [i, i - 1, i - 2].every(down);
  const across = [i, i - 1].every((k) => run.gradient[k].every((g, c) => g * run.gradient[k - 1][c] < 0));
  const half = Math.floor(i / 2);
  const earlier = Math.max(...gap.slice(0, half + 1)), recent = Math.max(...gap.slice(half + 1));
  const slow = gap[i] > 0.5 * gap[i - 1];

  if (run.status === "diverged") {  // the server's run blows up later: this is divergence
    if (gap.slice(1).every((g, k) => g > gap[k])) return said(TEXT.divergingEvery, {}, "diverging");
    if (rising) return said(TEXT.divergingGrows, {}, "diverging");
    if (recent > earlier) return said(TEXT.divergingSwings, {}, "diverging");
    return said(TEXT.divergesLater, {}, "diverging");
  }
  if (run.status === "converged") {  // the server's run reaches the minimum
    if (falling && across) return said(TEXT.overshooting);
    if (falling) return said(slow ? TEXT.slow : TEXT.fast);
    if (up(i)) return said(TEXT.risesForNow);
    if (across) return said(TEXT.oscillating);
    return said(recent < earlier ? TEXT.swingsCloser : "");
  }
  // where the run ends is not known yet: say only what was seen
  if (rising) return said(TEXT.grew);
  if (falling) return said(slow ? TEXT.fallingSlowly : TEXT.fallingFast);
  if (across) return said(TEXT.oscillating);
  return said("");
}
