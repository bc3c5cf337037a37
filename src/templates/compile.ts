import type { TemplatePart } from './types.js';

/** `$Name$` or `$Name.Part$`: what the reference calls a replaceable identifier. */
export const IDENTIFIER = /\$([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)?)\$/g;

/** Splits a response once, at load time, so rendering only concatenates. */
export function compileTemplate(text: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const match of text.matchAll(IDENTIFIER)) {
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push({ identifier: match[1] as string, raw: match[0] });
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}
