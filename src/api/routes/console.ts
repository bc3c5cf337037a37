import { readFile } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { MailroomError } from '../../shared/errors.js';
import type { RouteDef } from '../route.js';

/**
 * The web console (issue 8): hand-written HTML, CSS and ES modules from the top-level `console/`
 * folder, served as they are (no build step). `GET /` is the page; `GET /console/<file>` its
 * assets. The folder is found relative to this module: `src/api/routes/` under tsx and
 * `dist/api/routes/` when compiled are both three levels below the repository root.
 */
export const CONSOLE_DIR = fileURLToPath(new URL('../../../console/', import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Same origin only: no inline script or style, no framing, no plugins, forms post nowhere else. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/**
 * The frame a mail's HTML is shown in (`viewer.html`): the console writes a sandboxed frame into
 * it (no scripts, opaque origin), and that frame's `srcdoc` inherits this policy, not the
 * console's: the mail's inline styles apply, images come from data: (its `cid:` parts) or, once
 * the operator asks, from the web; nothing else loads and no script of its own runs here.
 */
const VIEWER_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data: http: https:; font-src data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/** A relative file name the console may serve: plain segments, no dot files, no `..`. */
const SAFE_PATH = /^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*\/)*[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

function notFound(path: string): MailroomError {
  return new MailroomError('NOT_FOUND', `the web console has no file ${path}`);
}

/** Reads a console file; anything outside the folder, unlisted or missing answers 404. */
export async function readConsoleFile(
  relative: string,
  root: string = CONSOLE_DIR,
): Promise<{ body: Buffer; type: string }> {
  const type = CONTENT_TYPES[extname(relative).toLowerCase()];
  if (!SAFE_PATH.test(relative) || relative.split('/').includes('..') || type === undefined) {
    throw notFound(relative);
  }
  const file = resolve(root, relative);
  if (!file.startsWith(resolve(root) + sep)) throw notFound(relative);
  try {
    return { body: await readFile(file), type };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') throw notFound(relative);
    throw err;
  }
}

async function send(reply: FastifyReply, relative: string): Promise<Buffer> {
  const { body, type } = await readConsoleFile(relative);
  reply
    .type(type)
    .header('content-security-policy', relative === 'viewer.html' ? VIEWER_CSP : CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache');
  return body;
}

const tags = ['web console'];
const File = Type.Any({ description: 'a file of the web console' });

export const consoleRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: '/',
    access: 'public',
    summary: 'The web console (its API calls carry the API token).',
    tags,
    hidden: true,
    schema: { response: { 200: File } },
    handler: async (_req, reply) => send(reply, 'index.html'),
  },
  {
    method: 'GET',
    url: '/console/*',
    access: 'public',
    summary: 'A script, style sheet or image of the web console.',
    tags,
    hidden: true,
    schema: {
      params: Type.Object({ '*': Type.String({ maxLength: 200 }) }, { additionalProperties: false }),
      response: { 200: File },
    },
    handler: async (req, reply) => send(reply, (req.params as { '*': string })['*']),
  },
];
