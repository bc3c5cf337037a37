import MimeNode from 'nodemailer/lib/mime-node';

/** Header names kept; our messages use about fifteen, custom headers a few more. */
const MAX_NAMES = 512;

interface HeaderKeyNormalizer {
  _normalizeHeaderKey(this: unknown, key: unknown): string;
}

const prototype = MimeNode.prototype as unknown as HeaderKeyNormalizer;

/** nodemailer's own header name normalization, as it was before the cache was installed. */
export const normalizeHeaderKeyUncached: HeaderKeyNormalizer['_normalizeHeaderKey'] = prototype._normalizeHeaderKey;

/**
 * Keeps nodemailer's normalized header names by name. MimeNode normalizes the name on every
 * `getHeader`, `setHeader` and `addHeader`, and while building the headers, with three regular
 * expressions (one with a callback per match): about 2 µs a call and 31 calls for a short reply,
 * more than half the time of composing it. The result depends on the name alone, so the first
 * answer for a name is the answer for good; names past MAX_NAMES, and anything that is not a
 * string, go to nodemailer every time. Installed once, for the whole process, when this module
 * is loaded.
 */
function installHeaderKeyCache(): void {
  if (typeof normalizeHeaderKeyUncached !== 'function') return; // a nodemailer without it: nothing to keep
  const names = new Map<string, string>();
  prototype._normalizeHeaderKey = function (this: unknown, key: unknown): string {
    if (typeof key !== 'string') return normalizeHeaderKeyUncached.call(this, key);
    let normalized = names.get(key);
    if (normalized === undefined) {
      normalized = normalizeHeaderKeyUncached.call(this, key);
      if (names.size < MAX_NAMES) names.set(key, normalized);
    }
    return normalized;
  };
}

installHeaderKeyCache();
