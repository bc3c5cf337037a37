import { readFile } from 'node:fs/promises';
import { MailroomError } from '../shared/errors.js';

export interface BodyOptions {
  data?: string;
  file?: string;
  /** A Google service account's JSON key file (or PEM private key) for the IMAP side. */
  keyFile?: string;
}

/** A JSON body from `--data '{…}'`, `--file path` or `--file -` (standard input). */
export async function readBody(options: BodyOptions, required = true): Promise<Record<string, unknown>> {
  let text: string | undefined = options.data;
  if (options.file !== undefined) {
    try {
      text = options.file === '-' ? await readStdin() : await readFile(options.file, 'utf8');
    } catch (err) {
      throw new MailroomError('VALIDATION_FAILED', `the settings file cannot be read: ${(err as Error).message}`, {
        field: 'file',
      });
    }
  }
  if (text === undefined) {
    if (!required) return {};
    throw new MailroomError('VALIDATION_FAILED', "give the settings as JSON with --data '{…}' or --file <path>", {
      field: 'data',
    });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new MailroomError('VALIDATION_FAILED', `the settings are not a JSON object: ${(err as Error).message}`, {
      field: options.file !== undefined ? 'file' : 'data',
    });
  }
}

/**
 * The body with `--key-file`'s key as the IMAP side's service account secret: `imap.auth` becomes
 * `{method: oauth2, flow: service-account}` (what the body says besides is kept), its client ID the
 * key's `client_email` unless the body names one. A key file needs no quoting inside JSON this way.
 */
export async function withKeyFile(
  body: Record<string, unknown>,
  path: string | undefined,
): Promise<Record<string, unknown>> {
  if (path === undefined) return body;
  let key: string;
  try {
    key = await readFile(path, 'utf8');
  } catch (err) {
    throw new MailroomError('VALIDATION_FAILED', `the key file cannot be read: ${(err as Error).message}`, {
      field: 'key-file',
    });
  }
  const imap = isObject(body.imap) ? body.imap : {};
  const auth = isObject(imap.auth) ? imap.auth : {};
  const clientId = auth.clientId ?? clientEmailOf(key);
  return {
    ...body,
    imap: {
      ...imap,
      auth: {
        ...auth,
        method: 'oauth2',
        flow: 'service-account',
        ...(clientId !== undefined && { clientId }),
        clientSecret: key,
      },
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `client_email` of a JSON key file; undefined for a PEM key or a file without it. */
function clientEmailOf(key: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(key);
    return isObject(parsed) && typeof parsed.client_email === 'string' ? parsed.client_email : undefined;
  } catch {
    return undefined;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
