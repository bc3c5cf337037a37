/**
 * Modal dialogs on the native <dialog>: focus moves in and stays in, Escape closes, and focus
 * returns to the button that opened it.
 */
import { h, uid } from './dom.js';

export function openDialog({ title, body, wide = false, onClose }) {
  const opener = document.activeElement;
  const titleId = uid('dialog-title');
  const heading = h('h2', { id: titleId }, title);
  const dialog = h('dialog', { class: wide ? 'dialog wide' : 'dialog', 'aria-labelledby': titleId }, heading, body);
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (onClose) onClose();
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first =
    dialog.querySelector('[autofocus]') ?? dialog.querySelector('input:not([type=hidden]), select, textarea, button');
  if (first) first.focus();
  return {
    element: dialog,
    close: () => dialog.close(),
    setTitle: (text) => {
      heading.textContent = text;
    },
  };
}

/** "Delete …?" with Yes / No; `action` runs on Yes and its error is shown in the dialog. */
export function confirmDialog({ title, question, yes = 'Yes', action, onDone }) {
  const message = h('p', { class: 'error', role: 'alert', tabindex: '-1', hidden: true });
  const yesButton = h('button', { type: 'submit', class: 'danger' }, yes);
  const form = h(
    'form',
    { method: 'dialog' },
    h('p', {}, question),
    message,
    h(
      'div',
      { class: 'actions' },
      yesButton,
      h('button', { type: 'button', autofocus: true, onclick: () => dlg.close() }, 'No'),
    ),
  );
  const dlg = openDialog({ title, body: form });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    yesButton.disabled = true;
    try {
      await action();
      dlg.close();
      if (onDone) onDone();
    } catch (err) {
      message.textContent = err.message;
      message.hidden = false;
      message.focus();
    } finally {
      yesButton.disabled = false;
    }
  });
  return dlg;
}
