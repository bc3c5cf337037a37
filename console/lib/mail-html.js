/**
 * A mail's HTML made into a document that shows inertly: what the console's message page puts in
 * a sandboxed frame (no scripts, no forms, no same origin; see lib/mail-frame.js).
 *
 * The HTML is first tokenised once to take out what the console's own Content-Security-Policy
 * would report while merely parsing it (event handler attributes, `style` attributes and
 * elements, which are kept aside and parsed as CSS), then parsed by the browser's DOMParser (an
 * inert document: nothing runs or loads) and rebuilt from an allow-list: elements outside it are
 * unwrapped (their text kept) or, for scripts, frames, plugins, forms' controls, SVG and MathML,
 * dropped with their content; only listed attributes stay (no `on…` handler, no `srcset`). Links
 * keep http(s) and mailto targets and open in a new tab; any other scheme (`javascript:`, `data:`,
 * `vbscript:`) is removed, so the link is inert text. Images: `cid:` ones become the data: URL of their part, remote ones (and CSS
 * `url(…)`s) are left out until the operator asks for them, everything else is removed. The frame
 * document's own Content-Security-Policy says the same again, so anything the rebuild missed
 * still cannot run or load.
 */

/** Elements dropped with everything in them. */
const DROP = new Set([
  'script',
  'noscript',
  'template',
  'iframe',
  'frame',
  'frameset',
  'object',
  'embed',
  'applet',
  'svg',
  'math',
  'audio',
  'video',
  'source',
  'track',
  'canvas',
  'input',
  'button',
  'select',
  'textarea',
  'option',
  'link',
  'meta',
  'base',
  'title',
  'head',
  'portal',
  'dialog',
  'style',
]);

/** Elements kept (with their allowed attributes); any other is replaced by its children. */
const KEEP = new Set(
  (
    'a abbr address article aside b bdi bdo big blockquote br caption center cite code col colgroup dd del ' +
    'details dfn div dl dt em figcaption figure font footer h1 h2 h3 h4 h5 h6 header hr i img ins kbd li main ' +
    'mark nav ol p pre q s samp section small span strike strong sub summary sup table tbody td tfoot th ' +
    'thead time tr tt u ul var wbr'
  ).split(' '),
);

/** Attributes kept on any kept element (URLs and `style` are handled apart). */
const ATTRIBUTES = new Set(
  (
    'class title lang dir align valign width height bgcolor color border cellpadding cellspacing ' +
    'colspan rowspan alt face size nowrap start type span summary headers scope abbr hspace vspace clear ' +
    'reversed datetime open id'
  ).split(' '),
);

/** Schemes a link may keep. */
const LINK_SCHEMES = new Set(['http:', 'https:', 'mailto:']);

/** Images inline in the HTML that may stay (raster formats only: no SVG, which can hold scripts). */
const DATA_IMAGE = /^data:image\/(?:png|gif|jpe?g|webp|bmp);base64,[a-z0-9+/=\s]*$/i;

/** A `url(…)` as the CSS object model writes it back: always `url("…")` with `"` and `\` escaped. */
const CSS_URL = /url\(\s*"((?:[^"\\]|\\.)*)"\s*\)/gi;

/** The frame's own policy: inline styles, images from data: (and the web after the operator's click). */
function framePolicy(remoteImages) {
  return (
    "default-src 'none'; style-src 'unsafe-inline'; font-src data:; " +
    `img-src data:${remoteImages ? ' http: https:' : ''}; form-action 'none'; base-uri 'none'`
  );
}

function isRemote(url) {
  return /^https?:\/\//i.test(url.trim());
}

/** A `Content-ID` as an `cid:` URL names it: no angle brackets, case kept, `%xx` decoded (RFC 2392). */
export function bareContentId(value) {
  let id = String(value).trim();
  if (/^cid:/i.test(id)) {
    id = id.slice(4);
    try {
      id = decodeURIComponent(id);
    } catch {
      // not %-encoded: as it is
    }
  }
  return id.replace(/^</, '').replace(/>$/, '');
}

/**
 * What an image address becomes: the data: URL of a `cid:` part, a remote address if allowed, an
 * inline raster image; null when it is left out. `counts` records what was blocked.
 */
function imageUrl(url, { cidImages, remoteImages }, counts) {
  const value = url.trim();
  if (/^cid:/i.test(value)) return cidImages.get(bareContentId(value)) ?? null;
  if (isRemote(value)) {
    if (remoteImages) return value;
    counts.remoteImages += 1;
    return null;
  }
  return DATA_IMAGE.test(value) ? value : null;
}

/** Rewrites every `url(…)` of a declaration block; a property whose URL cannot stay is removed. */
function cleanDeclarations(style, options, counts) {
  for (const name of [...style]) {
    const value = style.getPropertyValue(name);
    if (/image-set\(/i.test(value)) {
      style.removeProperty(name); // its URLs may be bare strings: not worth telling apart
      continue;
    }
    if (!/url\(/i.test(value)) continue;
    let dropped = false;
    const rewritten = value.replace(CSS_URL, (_m, escaped) => {
      const url = imageUrl(escaped.replace(/\\(.)/g, '$1'), options, counts);
      if (url === null) dropped = true;
      return url === null ? 'none' : `url("${url.replace(/["\\]/g, '\\$&')}")`;
    });
    const priority = style.getPropertyPriority(name);
    style.removeProperty(name);
    if (!dropped) style.setProperty(name, rewritten, priority);
    // Whatever the value became, no url() that was not allowed may remain.
    const now = style.getPropertyValue(name);
    const urls = [...now.matchAll(CSS_URL)].map(([, u]) => u.replace(/\\(.)/g, '$1'));
    const unreadable = /url\(/i.test(now) && urls.length === 0;
    if (unreadable || urls.some((u) => !allowedInCss(u, options))) style.removeProperty(name);
  }
}

function allowedInCss(url, { cidImages, remoteImages }) {
  if (url.startsWith('data:')) return DATA_IMAGE.test(url) || [...cidImages.values()].includes(url);
  return remoteImages && isRemote(url);
}

/** A style sheet of the mail with its rules' URLs rewritten, `@import`s dropped; '' when unreadable. */
function cleanStyleSheet(text, options, counts) {
  const sheet = new CSSStyleSheet();
  try {
    // @import is refused by constructed sheets: removed first, so nothing is fetched or warned about.
    sheet.replaceSync(text.replace(/@import[^;]*;?/gi, ''));
  } catch {
    return '';
  }
  const walk = (rules) => {
    for (const rule of [...rules]) {
      // Fonts come from data: only (the frame's font-src), before and after the click alike.
      if (rule instanceof CSSFontFaceRule && /url\(/i.test(rule.style.getPropertyValue('src'))) {
        const urls = [...rule.style.getPropertyValue('src').matchAll(CSS_URL)];
        if (urls.length === 0 || urls.some(([, u]) => !u.startsWith('data:font/'))) rule.style.removeProperty('src');
      }
      if (rule.style) cleanDeclarations(rule.style, options, counts);
      if (rule.cssRules) walk(rule.cssRules);
    }
  };
  walk(sheet.cssRules);
  return [...sheet.cssRules].map((r) => r.cssText).join('\n');
}

/** Elements whose content is text up to their end tag (the HTML standard's raw text and RCDATA elements). */
const RAW_TEXT = new Set(['script', 'style', 'textarea', 'title', 'xmp', 'iframe', 'noembed', 'noframes']);

/** Where the end tag of a raw text element starts (or the end of the input); reads no further. */
function closeTagAt(html, name, from) {
  const end = new RegExp(`</${name}`, 'gi');
  end.lastIndex = from;
  const found = end.exec(html);
  return found ? found.index : html.length;
}

/**
 * One pass over the HTML's start tags, as the HTML standard's tokeniser reads attributes: event
 * handler attributes (`on…`) are dropped, `style` attributes renamed to `styleName`, `<style>`
 * elements taken out (their CSS answered apart). It only spares the console reports of what it
 * would refuse anyway: what it misreads, the allow-list below still removes.
 */
function prepare(html, styleName) {
  const styles = [];
  let out = '';
  let i = 0;
  const n = html.length;
  while (i < n) {
    const lt = html.indexOf('<', i);
    if (lt === -1) {
      out += html.slice(i);
      break;
    }
    out += html.slice(i, lt);
    i = lt;
    if (html.startsWith('<!--', i)) {
      const end = html.indexOf('-->', i + 4);
      const stop = end === -1 ? n : end + 3;
      out += html.slice(i, stop);
      i = stop;
      continue;
    }
    const start = /^<([a-zA-Z][^\s/>]*)/.exec(html.slice(i, i + 200));
    if (!start) {
      out += '<';
      i += 1;
      continue;
    }
    const name = start[1].toLowerCase();
    let tag = `<${start[1]}`;
    let j = i + start[0].length;
    while (j < n) {
      while (j < n && /[\s/]/.test(html[j])) j += 1;
      if (j >= n) break;
      if (html[j] === '>') {
        j += 1;
        break;
      }
      let k = j + 1;
      while (k < n && !/[\s/>=]/.test(html[k])) k += 1;
      const attribute = html.slice(j, k).toLowerCase();
      let end = k;
      let value = null;
      let p = k;
      while (p < n && /\s/.test(html[p])) p += 1;
      if (html[p] === '=') {
        p += 1;
        while (p < n && /\s/.test(html[p])) p += 1;
        if (html[p] === '"' || html[p] === "'") {
          const close = html.indexOf(html[p], p + 1);
          end = close === -1 ? n : close + 1;
        } else {
          end = p;
          while (end < n && !/[\s>]/.test(html[end])) end += 1;
        }
        value = html.slice(p, end);
      }
      if (attribute === 'style') tag += ` ${styleName}=${value ?? '""'}`;
      else if (!attribute.startsWith('on')) tag += ` ${html.slice(j, end)}`;
      j = end;
    }
    i = j;
    if (name === 'style') {
      const close = closeTagAt(html, 'style', i);
      styles.push(html.slice(i, close));
      const after = html.indexOf('>', close);
      i = after === -1 ? n : after + 1;
      continue;
    }
    out += `${tag}>`;
    if (RAW_TEXT.has(name)) {
      const close = closeTagAt(html, name, i);
      out += html.slice(i, close);
      i = close;
    }
  }
  return { html: out, styles };
}

/** A `style` attribute's declarations, cleaned, as text ('' when nothing is left). */
function cleanInlineStyle(text, options, counts) {
  const sheet = new CSSStyleSheet();
  try {
    sheet.replaceSync(`x{${text.replace(/[{}]/g, '')}}`);
  } catch {
    return '';
  }
  const style = sheet.cssRules[0]?.style;
  if (!style) return '';
  cleanDeclarations(style, options, counts);
  return style.cssText;
}

function cleanLink(el, counts) {
  const href = el.getAttribute('href');
  el.removeAttribute('href');
  el.removeAttribute('target');
  if (href === null) return;
  const value = href.trim();
  let url = null;
  try {
    url = new URL(value);
  } catch {
    url = null;
  }
  if (url && LINK_SCHEMES.has(url.protocol)) {
    el.setAttribute('href', url.href);
    el.setAttribute('target', '_blank');
    el.setAttribute('rel', 'noopener noreferrer');
  } else if (value.startsWith('#')) {
    el.setAttribute('href', value);
  } else {
    counts.inertLinks += 1;
    el.setAttribute('title', `Link removed: ${value.slice(0, 200)}`);
  }
}

function cleanElement(el, styleName, options, counts) {
  const tag = el.localName;
  const href = tag === 'a' || tag === 'area' ? el.getAttribute('href') : null;
  const src = tag === 'img' ? el.getAttribute('src') : null;
  const background = el.getAttribute('background');
  const style = el.getAttribute(styleName) ?? el.getAttribute('style');
  for (const { name } of [...el.attributes]) {
    if (!ATTRIBUTES.has(name.toLowerCase()) || name === 'style') el.removeAttribute(name);
  }
  if (href !== null) {
    el.setAttribute('href', href);
    cleanLink(el, counts);
  }
  if (src !== null) {
    const url = imageUrl(src, options, counts);
    if (url !== null) el.setAttribute('src', url);
    else if (!el.getAttribute('alt')) el.setAttribute('alt', '[image]');
  }
  if (background !== null) {
    const url = imageUrl(background, options, counts);
    if (url !== null) el.setAttribute('background', url);
  }
  // Kept under its own name while in this document (whose policy is the console's): the frame
  // document's text names it `style` again.
  const css = style === null ? '' : cleanInlineStyle(style, options, counts);
  if (css) el.setAttribute(styleName, css);
}

/**
 * The frame document for a mail's HTML.
 * @param {string} html the HTML part as the API gives it
 * @param {{ cidImages?: Map<string, string>, remoteImages?: boolean }} options `cidImages`: Content-ID
 *   (bare) to data: URL; `remoteImages`: the operator asked to load them
 * @returns {{ srcdoc: string, remoteImages: number, inertLinks: number }} what was left out
 */
export function mailDocument(html, { cidImages = new Map(), remoteImages = false } = {}) {
  const options = { cidImages, remoteImages };
  const counts = { remoteImages: 0, inertLinks: 0 };
  // An attribute name the mail cannot know in advance (so it cannot write one that turns into `style`).
  const styleName = `data-mailroom-${Math.random().toString(36).slice(2, 10)}`;
  const prepared = prepare(html, styleName);
  const doc = new DOMParser().parseFromString(prepared.html, 'text/html');
  const styles = prepared.styles.map((css) => cleanStyleSheet(css, options, counts));
  const body = doc.body;
  // Deepest first would also do; document order with a live check keeps it simple: a removed
  // element's descendants are skipped because they are no longer in the body.
  for (const el of [...body.querySelectorAll('*')]) {
    if (!body.contains(el)) continue;
    const tag = el.localName;
    if (DROP.has(tag) || el.namespaceURI !== 'http://www.w3.org/1999/xhtml') el.remove();
    else if (!KEEP.has(tag)) el.replaceWith(...el.childNodes);
  }
  for (const el of body.querySelectorAll('*')) cleanElement(el, styleName, options, counts);
  // Comments can hide nothing that runs here, but they are not the mail's text either.
  const walker = doc.createTreeWalker(body, NodeFilter.SHOW_COMMENT);
  const comments = [];
  while (walker.nextNode()) comments.push(walker.currentNode);
  for (const c of comments) c.remove();
  const bgcolor = (body.getAttribute('bgcolor') ?? '').replace(/[^#a-zA-Z0-9]/g, '');
  const bodyStyle = bgcolor ? ` bgcolor="${bgcolor}"` : '';
  const policy = framePolicy(remoteImages);
  const srcdoc =
    '<!doctype html><html><head><meta charset="utf-8">' +
    `<meta http-equiv="Content-Security-Policy" content="${policy}">` +
    '<meta name="referrer" content="no-referrer">' +
    styles
      .filter(Boolean)
      .map((css) => `<style>${css.replace(/<\//g, '<\\/')}</style>`)
      .join('') +
    `</head><body${bodyStyle}>${body.innerHTML.replaceAll(` ${styleName}="`, ' style="')}</body></html>`;
  return { srcdoc, remoteImages: counts.remoteImages, inertLinks: counts.inertLinks };
}
