// The transfer-learning lesson: the ImageNet network stage by stage (frozen) and the new output
// layer (trained) from GET /api/transfer; a project's learning curve both ways from
// POST /api/projects/{id}/curve; a photo read as CIFAR-10's ten classes (POST /api/predict, groups).
import { t } from "./i18n.js";
import { getJSON, postForm, sendJSON } from "./api.js";
import { createBars, paintColour } from "./render.js";
import { count, percent } from "./format.js";
import { $ } from "./dom.js";
import { at, readURL, writeURL } from "./url-state.js";

const classCount = (v) => Math.min(50, Math.max(2, Number(v) || 2));
const S = { classes: 2, bars: null };
// The address: how many classes the new output layer has.
const URL_STATE = [at("classes", (s) => s, "classes", { parse: classCount })];
readURL(URL_STATE, S);

const shape = (s) => s.join("×");
// a stage's name and what it does, from its numbers (the server's `what` is English)
const NAMES = { input: "input", stem: "stem", head: "head", pool: "pool", classifier: "ImageNet's output layer", "new layer": "new output layer" };
const stageName = (s) => (s.name === "stage" ? t("stage {n}", undefined, { n: s.number }) : t(NAMES[s.name]));
function stageWhat(s) {
  if (s.name === "input") return t("a colour photo");
  if (s.name === "pool") return t("global average");
  if (s.name === "classifier" || s.name === "new layer") return t("dense {a} → {b}", undefined, { a: 1280, b: s.output[0] });
  const conv = s.name === "stage" ? t("{r} × MBConv {k}×{k}", undefined, { r: s.blocks, k: s.kernel })
    : t("conv {k}×{k}", undefined, { k: s.kernel });
  return conv + (s.expansion > 1 ? t(", expand ×{e}", undefined, { e: s.expansion }) : "") + (s.stride === 2 ? t(", stride 2") : "");
}
const cell = (text, cls) => Object.assign(document.createElement("td"), { textContent: text, className: cls || "" });

async function showNetwork() {
  const lesson = await getJSON(`/api/transfer?classes=${S.classes}`);
  const rows = [...lesson.stages, { ...lesson.replaced, replaced: true }, lesson.new_layer].map((s) => {
    const tr = document.createElement("tr");
    tr.className = s.replaced ? "replaced" : s.frozen ? "frozen" : "trained";
    const status = s.replaced ? t("replaced") : s.frozen ? (s.weights ? `❄ ${t("frozen")}` : "") : `✎ ${t("trained")}`;
    tr.append(cell(stageName(s)), cell(stageWhat(s)), cell(shape(s.output)), cell(count(s.weights), "num"), cell(status, "state"));
    return tr;
  });
  $("stages").replaceChildren(...rows);
  $("frozen-total").textContent = count(lesson.frozen);
  $("trained-total").textContent = count(lesson.trained);
  $("trained-formula").textContent = `${lesson.features} × ${lesson.classes} + ${lesson.classes} = ${count(lesson.trained)} `
    + t("({p} of the weights)", undefined, { p: `${(100 * lesson.trained / (lesson.frozen + lesson.trained)).toFixed(2)}%` });
  if (!S.bars) {
    S.bars = createBars($("cifar-bars"), lesson.cifar10.map((g) => g.label));
    $("cifar-members").replaceChildren(...lesson.cifar10.flatMap((g) => [
      Object.assign(document.createElement("dt"), { textContent: g.label }),
      Object.assign(document.createElement("dd"), { textContent: g.members.join(", ") })]));
    S.groups = lesson.cifar10.map((g) => g.label);
  }
}

$("classes").value = String(S.classes);
$("classes").addEventListener("change", (e) => {
  S.classes = classCount(e.target.value);
  writeURL(URL_STATE, S);
  showNetwork();
});

async function listProjects() {
  const { projects } = await getJSON("/api/projects");
  const select = $("curve-project");
  select.replaceChildren(...projects.map((p) => new Option(`${p.name} (${p.samples})`, p.id)));
  $("measure").disabled = projects.length === 0;
  if (!projects.length) $("curve-status").textContent = t("No projects yet: make one on the Teach page, with 7 or more photos a class.");
}

$("measure").addEventListener("click", async () => {
  $("measure").disabled = true;
  $("curve-status").textContent = t("Training both ways on 2, 5, 10 and 20 photos a class…");
  try {
    const c = await sendJSON("POST", `/api/projects/${$("curve-project").value}/curve`, {});
    $("curve-rows").replaceChildren(...c.sizes.map((n, i) => {
      const tr = document.createElement("tr");
      tr.append(cell(String(n)), ...["transfer", "scratch"].map((way) => {
        const v = c[way][i], td = cell(v === null ? t("too few photos") : percent(v), v === null ? "missing" : "num");
        if (v !== null) td.style.setProperty("--p", String(v));
        return td;
      }));
      return tr;
    }));
    $("curve").hidden = false;
    $("curve-status").textContent = t("Tested on the same {n} held-out photos, in {s} s.", undefined, { n: c.held_out.length, s: c.seconds });
  } catch (err) {
    $("curve-status").textContent = err.message;
  } finally {
    $("measure").disabled = false;
  }
});

$("cifar-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file) return;
  try {
    const body = await postForm("/api/predict", { image: file, model: "imagenet", groups: "cifar10" });
    const byName = Object.fromEntries(body.groups.map((g) => [g.label, g]));
    const [best] = body.groups;
    $("cifar-verdict").textContent = best.label === "other"
      ? t("None of the ten: ImageNet says {label}", undefined, { label: body.prediction })
      : `${best.label} · ${percent(best.probability)} (${best.best})`;
    S.bars.update(S.groups.map((g) => byName[g].probability), false);
    $("cifar-seen").hidden = false;
    paintColour($("cifar-seen"), body.input);
  } catch (err) {
    $("cifar-verdict").textContent = err.message;
  }
});

showNetwork().catch((err) => { $("frozen-total").textContent = err.message; });
listProjects().catch((err) => { $("curve-status").textContent = err.message; });
