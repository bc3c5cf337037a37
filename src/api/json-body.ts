import type { FastifyInstance } from 'fastify';
import { MailroomError } from '../shared/errors.js';

/**
 * [32] deepest nesting of objects and arrays a request body may have. The API's own bodies nest
 * four levels at most (a server's `imap.auth`); an 800 KB body of nested arrays kept the event
 * loop busy for about 0.8 s in JSON.parse and the schema check, for every such request.
 */
export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/**
 * [10000] most members and elements a request body may have in all (its commas, outside strings).
 * The API's own bodies have a few hundred at most (a send with 300 recipients and 50 attachments);
 * a 3 MB body of a million empty attachment objects kept the event loop busy ~11 s in the schema
 * check, which reports every fault of every element.
 */
export const MAX_JSON_ITEMS = 10_000;

/**
 * What is wrong with the shape of JSON text, found in one pass that stops at the first fault:
 * objects and arrays nested deeper than `maxDepth`, or more than `maxItems` members and elements
 * in all (brackets and commas inside strings do not count); null when neither. The text need
 * not be valid JSON: the parser that runs after this says what else is wrong with it.
 */
export function jsonShapeFault(text: string, maxDepth: number, maxItems: number): 'depth' | 'items' | null {
  let depth = 0;
  let commas = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return 'depth';
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    } else if (c === COMMA) {
      if (++commas >= maxItems) return 'items';
    }
  }
  return null;
}

/** Whether JSON text nests objects and arrays deeper than `max` (see jsonShapeFault). */
export function nestsDeeperThan(text: string, max: number): boolean {
  return jsonShapeFault(text, max, Infinity) === 'depth';
}

/** A body of nothing but white space (a line break `--data-binary @file` sends). */
const EMPTY = /^\s*$/;

/**
 * Replaces fastify's JSON body parser with one that takes an empty body as no body (fastify
 * refuses it: "Body cannot be empty when content-type is set to 'application/json'"), refuses
 * bodies nested deeper than MAX_JSON_DEPTH, or with more than MAX_JSON_ITEMS members and elements,
 * before parsing them (400 VALIDATION_FAILED), then
 * parses as fastify does (`__proto__` and `constructor.prototype` keys refused).
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser<string>('application/json', { parseAs: 'string' }, (request, body, done) => {
    // No body is no body, whatever the content type says (`curl -X DELETE -H 'content-type:
    // application/json'`): routes that take none accept it, the others say a body is required.
    if (EMPTY.test(body)) {
      done(null, undefined);
      return;
    }
    const fault = jsonShapeFault(body, MAX_JSON_DEPTH, MAX_JSON_ITEMS);
    if (fault !== null) {
      done(
        new MailroomError(
          'VALIDATION_FAILED',
          fault === 'depth'
            ? `the request body nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels`
            : `the request body has more than ${MAX_JSON_ITEMS} members and elements in all; no request of this API needs as many`,
          { field: 'body' },
        ),
        undefined,
      );
      return;
    }
    parse(request, body, done);
  });
}
