/** Escaping of values inserted into responses. */

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Safe in HTML text and in quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
}

// Line breaks and tabs (incl. the Unicode line and paragraph separators); other C0/C1 controls and DEL.
const BREAKS = /[\r\n\t\u2028\u2029]+/g;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g; // eslint-disable-line no-control-regex

/**
 * Removes control characters, so a value cannot start a new line or header: runs of CR, LF and
 * TAB become one space, other controls (NUL, ESC, …) disappear.
 */
export function stripControls(value: string): string {
  return value.replace(BREAKS, ' ').replace(CONTROL, '');
}
