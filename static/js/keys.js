// When a page's keyboard shortcuts apply. They work wherever focus is (after clicking a slider,
// a checkbox or a button, after a clicker's Page Down) except while typing in a text field or
// choosing in a list. Space on a focused button or checkbox is the shortcut, not a second click.
const TYPING = new Set(["text", "number", "search", "email", "password", "url", "tel", "date", "time"]);
const ARROWS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"]);

// Focus is where the user types or chooses: keys belong to that field.
export function isTyping(e) {
  const el = e.target;
  if (!el || !el.matches) return false;
  return el.isContentEditable || el.matches("textarea, select") || (el.matches("input") && TYPING.has(el.type));
}

export function isShortcut(e) {
  const el = e.target;
  if (isTyping(e) || (e.ctrlKey && e.key !== "z") || e.altKey || e.metaKey) return false;
  if (el.matches && el.matches("input[type=range]") && ARROWS.has(e.key)) return false; // the slider moves itself
  if (e.key === " " && el.matches && el.matches("button, input[type=checkbox], input[type=radio], summary, a")) e.preventDefault();
  return true;
}
