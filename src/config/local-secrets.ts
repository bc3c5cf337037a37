import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MailroomError } from '../shared/errors.js';
import { generateSecretKey, parseSecretKey } from '../shared/sealed-secrets.js';
import type { Config } from './config.js';

export interface ResolvedSecrets {
  secretKey: Buffer;
  previousKeys: Buffer[];
  apiToken: string;
  /** What was generated on this start, so the caller can say so (once). */
  generated: { secretKeyFile?: string; apiTokenFile?: string };
}

async function readOrCreate(file: string, make: () => string): Promise<{ value: string; created: boolean }> {
  try {
    return { value: (await readFile(file, 'utf8')).trim(), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const value = make();
  try {
    // 'wx': never overwrite a key another process wrote a moment ago.
    await writeFile(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
    return { value, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      return { value: (await readFile(file, 'utf8')).trim(), created: false };
    throw err;
  }
}

/**
 * The sealing key and the administrator API token. From the environment when set. With the
 * embedded database they are otherwise generated into the data folder (mode 0600); with
 * PostgreSQL the engine refuses to start without them, since several instances must share them.
 */
export async function resolveSecrets(config: Config): Promise<ResolvedSecrets> {
  const generated: ResolvedSecrets['generated'] = {};
  const embedded = config.databaseUrl === undefined;
  let keyText = config.secretKey;
  let apiToken = config.apiToken;
  if ((!keyText || !apiToken) && !embedded) {
    const missing = !keyText ? 'MAILROOM_SECRET_KEY' : 'MAILROOM_API_TOKEN';
    throw new MailroomError(
      missing === 'MAILROOM_SECRET_KEY' ? 'SECRET_KEY_MISSING' : 'CONFIG_INVALID',
      `${missing} must be set when MAILROOM_DATABASE_URL is used (every instance needs the same value); ` +
        `make one with: openssl rand -base64 32`,
      { field: missing },
    );
  }
  if (!keyText || !apiToken) await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  if (!keyText) {
    const file = join(config.dataDir, 'secret.key');
    const result = await readOrCreate(file, generateSecretKey);
    keyText = result.value;
    if (result.created) generated.secretKeyFile = file;
  }
  if (!apiToken) {
    const file = join(config.dataDir, 'api-token');
    const result = await readOrCreate(file, () => `mr_${randomBytes(24).toString('base64url')}`);
    apiToken = result.value;
    if (result.created) generated.apiTokenFile = file;
  }
  return {
    secretKey: parseSecretKey(keyText, config.secretKey ? 'MAILROOM_SECRET_KEY' : 'data/secret.key'),
    previousKeys: config.previousSecretKeys.map((k, i) => parseSecretKey(k, `MAILROOM_PREVIOUS_SECRET_KEYS[${i}]`)),
    apiToken,
    generated,
  };
}
