import { readFile } from 'node:fs/promises';
import { MailroomError } from '../shared/errors.js';

export interface BodyOptions {
  data?: string;
  file?: string;
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

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
