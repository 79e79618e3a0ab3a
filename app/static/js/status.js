// One place that writes a status line, so every message (errors included) is plain text.

/** Show `text` in a status element; errors get their own look. */
export function setStatus(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle("error", isError);
}
