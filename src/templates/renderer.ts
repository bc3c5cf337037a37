import { MailroomError } from '../shared/errors.js';
import { escapeHtml, stripControls } from './escape.js';
import { identifierValue, type RenderContext } from './identifiers.js';
import type { LoadedResponse, TemplatePart } from './types.js';

/** An inline image, in the shape nodemailer takes as an attachment. */
export interface RenderedAttachment {
  filename: string;
  contentType: string;
  cid: string;
  content: Buffer;
}

export interface RenderedResponse {
  /** Plain text responses. */
  text?: string;
  /** HTML and image responses (images are `cid:` references to `attachments`). */
  html?: string;
  attachments: RenderedAttachment[];
  /** `$Names$` that are not identifiers: left in place as written. */
  unknownIdentifiers: string[];
}

/**
 * Fills a template. Values are stripped of control characters (CR/LF included) and, in HTML,
 * escaped; unknown identifiers stay as written and are collected in `unknown`.
 */
export function fillTemplate(
  parts: readonly TemplatePart[],
  html: boolean,
  ctx: RenderContext,
  unknown: Set<string>,
): string {
  const cache = new Map<string, string>();
  let out = '';
  for (const part of parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    let value = cache.get(part.identifier);
    if (value === undefined) {
      const compute = identifierValue(part.identifier);
      if (!compute) {
        unknown.add(part.raw);
        value = part.raw;
      } else {
        value = stripControls(compute(ctx));
        if (html) value = escapeHtml(value);
      }
      cache.set(part.identifier, value);
    }
    out += value;
  }
  return out;
}

/** Renders one loaded response for a reply. Throws TEMPLATE_UNAVAILABLE when its Src could not be loaded. */
export function renderResponse(response: LoadedResponse, ctx: RenderContext): RenderedResponse {
  if (response.unavailable !== undefined || response.template === undefined) {
    throw new MailroomError(
      'TEMPLATE_UNAVAILABLE',
      `response '${response.name}' cannot be used: ${response.unavailable}`,
    );
  }
  const unknown = new Set<string>();
  const isHtml = response.kind !== 'text';
  const body = fillTemplate(response.template, isHtml, ctx, unknown);
  return {
    ...(isHtml ? { html: body } : { text: body }),
    attachments: response.images.map(({ filename, contentType, cid, content }) => ({
      filename,
      contentType,
      cid,
      content,
    })),
    unknownIdentifiers: [...unknown],
  };
}
