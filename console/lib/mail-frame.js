/**
 * The frame a mail's HTML is shown in. Two frames: the outer one is the engine's `viewer.html`,
 * served with a policy of its own (see src/api/routes/console.ts: inline styles, data: images and,
 * after a click, remote ones; no script at all), because a `srcdoc` document inherits the policy
 * of the document that holds it and the console's own would strip every mail's styling. The
 * console writes the inner frame into it: `sandbox` without `allow-scripts` or `allow-same-origin`
 * (an opaque origin that can neither run code nor reach the console), popups allowed only so that
 * a mail's http(s) link opens in a new tab instead of inside the console.
 */
import { h } from './dom.js';

/** [480] px the frame is high; the mail scrolls inside it. */
const HEIGHT_PX = 480;

export function mailFrame(title) {
  const outer = h('iframe', { src: '/console/viewer.html', title, class: 'mail-frame', height: String(HEIGHT_PX) });
  const ready = new Promise((resolve) => outer.addEventListener('load', () => resolve(), { once: true }));
  let inner = null;
  return {
    element: outer,
    /** Shows this document (from lib/mail-html.js) in place of the one shown before. */
    async show(srcdoc) {
      await ready;
      const doc = outer.contentDocument;
      if (!doc) return;
      inner?.remove();
      doc.documentElement.style.height = '100%';
      doc.body.style.margin = '0';
      doc.body.style.height = '100%';
      inner = doc.createElement('iframe');
      inner.setAttribute('sandbox', 'allow-popups allow-popups-to-escape-sandbox');
      inner.setAttribute('referrerpolicy', 'no-referrer');
      inner.setAttribute('title', title);
      inner.style.border = '0';
      inner.style.width = '100%';
      inner.style.height = '100%';
      inner.style.display = 'block';
      inner.srcdoc = srcdoc;
      doc.body.append(inner);
    },
  };
}
