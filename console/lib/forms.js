/**
 * Form fields named by the API's field paths (`imap.auth.password`), so an API error's `field`
 * finds its input, and the error shows next to it.
 */
import { h, uid } from './dom.js';

function errorId(input) {
  return `${input.id}-error`;
}

function wrap(label, input, hint) {
  const hintEl = hint ? h('p', { class: 'hint', id: `${input.id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h(
    'div',
    { class: 'field' },
    h('label', { for: input.id }, label),
    input,
    hintEl,
    h('p', { class: 'field-error', id: errorId(input), hidden: true }),
  );
}

/** A labelled input. `type` is an input type or 'textarea'. */
export function input({ label, name, type = 'text', value, required, hint, placeholder, autocomplete, min, max }) {
  const id = uid('f');
  const el =
    type === 'textarea'
      ? h('textarea', { id, name, rows: 2, placeholder })
      : h('input', {
          id,
          name,
          type,
          placeholder,
          autocomplete: autocomplete ?? (type === 'password' ? 'new-password' : 'off'),
          min,
          max,
          inputmode: type === 'number' ? 'numeric' : undefined,
          spellcheck: type === 'text' ? 'false' : undefined,
        });
  if (value !== undefined && value !== null) el.value = String(value);
  if (required) el.setAttribute('aria-required', 'true');
  return wrap(required ? `${label} *` : label, el, hint);
}

export function checkbox({ label, name, checked }) {
  const id = uid('f');
  const el = h('input', { id, name, type: 'checkbox', checked: Boolean(checked) });
  return h(
    'div',
    { class: 'field check' },
    el,
    h('label', { for: id }, label),
    h('p', { class: 'field-error', id: errorId(el), hidden: true }),
  );
}

/** options: [[value, label], …] */
export function select({ label, name, options, value, onchange, hint }) {
  const id = uid('f');
  const el = h('select', { id, name, onchange }, ...options.map(([v, text]) => h('option', { value: v }, text)));
  if (value !== undefined && value !== null) el.value = String(value);
  return wrap(label, el, hint);
}

/** The form control of an API field path, if the form has a visible one. */
export function control(form, field) {
  if (!field) return null;
  const el = form.elements.namedItem(field);
  if (!el || !(el instanceof HTMLElement) || el.closest('[hidden]')) return null;
  return el;
}

export function value(form, name) {
  const el = form.elements.namedItem(name);
  if (!el) return undefined;
  if (el.type === 'checkbox') return el.checked;
  return el.value;
}

export function clearErrors(form, general) {
  for (const el of form.querySelectorAll('[aria-invalid="true"]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field-error')) {
    el.textContent = '';
    el.hidden = true;
  }
  if (general) {
    general.textContent = '';
    general.hidden = true;
  }
}

/**
 * Shows errors next to their fields (the first one focused); an error without a visible field
 * goes to `general`. errors: [{ field, message }]
 */
export function showErrors(form, general, errors) {
  let first = null;
  for (const { field, message } of errors) {
    const el = control(form, field);
    if (!el) {
      general.textContent = message;
      general.hidden = false;
      continue;
    }
    const slot = document.getElementById(errorId(el));
    slot.textContent = message;
    slot.hidden = false;
    el.setAttribute('aria-invalid', 'true');
    const described = (el.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean);
    if (!described.includes(slot.id)) el.setAttribute('aria-describedby', [...described, slot.id].join(' '));
    first ??= el;
  }
  if (first) first.focus();
  else if (!general.hidden) general.focus();
}

/** An error area for messages that name no field. */
export function generalError() {
  return h('p', { class: 'error', role: 'alert', tabindex: '-1', hidden: true });
}

/** Shows an ApiError (or any error) next to its field or in `general`. */
export function showApiError(form, general, err) {
  showErrors(form, general, [{ field: err.field, message: err.message }]);
}
