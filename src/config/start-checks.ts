import { stat } from 'node:fs/promises';
import { MailroomError } from '../shared/errors.js';

/**
 * Checks of the configuration that need the machine, made as the engine starts (loadConfig stays
 * pure): a setting that cannot work is refused then, naming its variable, rather than found out
 * by the first request that needs it.
 */

/** MAILROOM_CA_DIR must be a directory that exists (else every CA file would be refused, later). */
export async function checkCaDir(caDir: string | undefined): Promise<void> {
  if (caDir === undefined) return;
  const found = await stat(caDir).catch((err: NodeJS.ErrnoException) => err);
  if (found instanceof Error || !found.isDirectory()) {
    const why =
      found instanceof Error ? (found.code === 'ENOENT' ? 'does not exist' : found.message) : 'is not a directory';
    throw new MailroomError('CONFIG_INVALID', `MAILROOM_CA_DIR must be a directory of PEM files: '${caDir}' ${why}`, {
      field: 'MAILROOM_CA_DIR',
    });
  }
}

/**
 * What a failed listen of the HTTP API means in the settings' words: the port (in use, or
 * privileged) is MAILROOM_HTTP_PORT's, the address (not of this machine, or a name that does not
 * resolve) MAILROOM_HTTP_HOST's. Other errors are answered as they are.
 */
export function listenErrorOf(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const at = `${host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return new MailroomError(
        'CONFIG_INVALID',
        `MAILROOM_HTTP_PORT: port ${port} is already in use on ${host} (another program, or another Mailroom); ` +
          'stop it or choose another port',
        { field: 'MAILROOM_HTTP_PORT', cause: err },
      );
    case 'EACCES':
      return new MailroomError(
        'CONFIG_INVALID',
        `MAILROOM_HTTP_PORT: listening on ${at} is not permitted (ports below 1024 need privileges); choose a port from 1024`,
        { field: 'MAILROOM_HTTP_PORT', cause: err },
      );
    case 'EADDRNOTAVAIL':
      return new MailroomError(
        'CONFIG_INVALID',
        `MAILROOM_HTTP_HOST: '${host}' is not an address of this machine; use one of its addresses, 127.0.0.1 or 0.0.0.0`,
        { field: 'MAILROOM_HTTP_HOST', cause: err },
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return new MailroomError(
        'CONFIG_INVALID',
        `MAILROOM_HTTP_HOST: the name '${host}' does not resolve to an address; use an address of this machine`,
        { field: 'MAILROOM_HTTP_HOST', cause: err },
      );
    default:
      return err;
  }
}
