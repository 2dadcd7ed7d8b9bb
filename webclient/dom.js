/** Small DOM helpers shared by the web client's modules. */

/**
 * The element with `id` (the page defines every id the modules use).
 * @template {HTMLElement} [E=HTMLElement]
 * @param {string} id
 * @returns {E}
 */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`no element #${id}`);
  return /** @type {E} */ (element);
}

/**
 * A new element with text and attributes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} [attributes]
 * @param {...(Node | string)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

/**
 * A button that runs `action`, reporting its failure in the status line.
 * @param {string} label @param {() => Promise<unknown>} action @param {Record<string, string>} [attributes]
 */
export function button(label, action, attributes = {}) {
  const element = el("button", { type: "button", class: "plain", ...attributes }, label);
  element.addEventListener("click", () => void guarded(action));
  return element;
}

/**
 * Show a line in the status region (read out by screen readers).
 * @param {string} text @param {boolean} [error]
 */
export function setStatus(text, error = false) {
  const status = byId("status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

/**
 * Run `action`; a failure is shown, not thrown.
 * @param {() => Promise<unknown>} action
 */
export async function guarded(action) {
  try {
    await action();
  } catch (error) {
    setStatus(describe(error), true);
  }
}

/**
 * A sentence for a failure: the server's error, a refused or lost connection.
 * @param {unknown} error
 */
export function describe(error) {
  if (error && typeof error === "object") {
    const e = /** @type {any} */ (error);
    if (e.name === "ParleyError") return `${e.serverMessage} (${e.errorName})`;
    if (e.name === "ConnectionLost") {
      return e.reason ? `Connection closed: ${e.reason} (code ${e.closeCode})` : `Connection lost (code ${e.closeCode})`;
    }
    if (e.message) return String(e.message);
  }
  return String(error);
}

/**
 * Handle a form's submit with `action(values)`; the form is reset after success.
 * @param {string} id @param {(form: HTMLFormElement) => Promise<unknown>} action
 */
export function onSubmit(id, action) {
  const form = /** @type {HTMLFormElement} */ (byId(id));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void guarded(async () => {
      await action(form);
      form.reset();
    });
  });
}

/**
 * The value of a form's input.
 * @param {string} id
 */
export function valueOf(id) {
  return /** @type {HTMLInputElement} */ (byId(id)).value.trim();
}
