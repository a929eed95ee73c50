// The project the teacher shows the class, on a student's page (read-only): its classes with a few
// photos each, its score, "Try it" with a photo (or the phone's camera) and "Copy into my projects",
// which makes a project of the student's own and opens it on /teach. The server says what is shown
// (GET /api/sessions/{code}/project); the page draws it and never learns the project's id.
import { getJSON, postForm, sendJSON } from "./api.js";
import { t, tn } from "./i18n.js";
import { percent } from "./format.js";
import { $ } from "./dom.js";

export class SharedProject {
  constructor(code) {
    this.code = code;
    this.base = `/api/sessions/${encodeURIComponent(code)}/project`;
    this.asked = 0;
    $("shared-photo").addEventListener("change", (e) => { const [file] = e.target.files; if (file) this.tryPhoto(file); e.target.value = ""; });
    $("shared-copy").addEventListener("click", () => this.copy());
  }

  // What the class is shown now (after an event, or when the page's socket (re)opens); none: hidden.
  async refresh() {
    const asked = ++this.asked;  // two events in a row: only the latest answer is drawn
    let view = null;
    try {
      view = await getJSON(this.base);
    } catch (err) {
      if (err.status !== 404 && err.status !== 410) this.say(err.message);
    }
    if (asked !== this.asked) return;
    if (view) this.show(view);
    else this.hide();
  }

  show(view) {
    const panel = $("shared-panel");
    const fresh = panel.hidden;
    $("shared-name").textContent = view.name;
    $("shared-score").textContent = view.trained
      ? t("Held-out accuracy: {accuracy} ({n} photos it did not learn from)", undefined, { accuracy: percent(view.accuracy), n: view.held_out })
      : t("Not trained yet: its classes and photos only.");
    $("shared-classes").replaceChildren(...view.classes.map((c) => this.classItem(c)));
    $("shared-try").hidden = !view.trained;
    if (fresh) { $("shared-answer").replaceChildren(); this.say(""); }
    panel.hidden = false;
    if (fresh) panel.scrollIntoView({ block: "nearest" });
  }

  classItem(c) {
    const li = document.createElement("li");
    const name = document.createElement("strong");
    name.textContent = c.name;
    const count = document.createElement("span");
    count.className = "shared-count";
    count.textContent = tn(c.count, "{n} photo", "{n} photos");
    const photos = document.createElement("div");
    photos.className = "shared-thumbs";
    photos.append(...c.samples.map((id) => {
      const img = document.createElement("img");
      img.src = `${this.base}/samples/${id}`;
      img.alt = c.name;
      img.width = img.height = 56;
      return img;
    }));
    li.append(name, count, photos);
    return li;
  }

  hide() {
    this.asked++;  // an answer still on its way is not drawn
    $("shared-panel").hidden = true;
    $("shared-classes").replaceChildren();
    $("shared-answer").replaceChildren();
  }

  say(text) { $("shared-status").textContent = text; }

  async tryPhoto(file) {
    this.say(t("Reading the photo…"));
    try {
      const read = await postForm(`${this.base}/predict`, { image: file });
      const preview = document.createElement("img");
      preview.src = URL.createObjectURL(file);
      preview.alt = t("Your photo");
      preview.className = "shared-preview";
      preview.addEventListener("load", () => URL.revokeObjectURL(preview.src), { once: true });
      const verdict = document.createElement("span");
      verdict.className = "shared-verdict";
      const values = { label: read.prediction, confidence: percent(read.confidence), labels: read.labels.join(", ") };
      verdict.textContent = `${read.sure ? t("It says: {label} ({confidence})", undefined, values)
        : t("Not sure: perhaps {label} ({confidence})", undefined, values)} ${t("It can only answer with its classes: {labels}.", undefined, values)}`;
      $("shared-answer").replaceChildren(preview, verdict);
      this.say("");
    } catch (err) {
      if (err.status === 404 || err.status === 410) return this.refresh();
      this.say(err.message);
    }
  }

  async copy() {
    $("shared-copy").disabled = true;
    this.say(t("Copying the project…"));
    try {
      const copy = await sendJSON("POST", `${this.base}/copy`);
      location.assign(`/teach?project=${encodeURIComponent(copy.id)}`);
    } catch (err) {
      $("shared-copy").disabled = false;
      if (err.status === 404 || err.status === 410) return this.refresh();
      this.say(err.message);
    }
  }
}
