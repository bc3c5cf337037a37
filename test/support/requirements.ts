import type { Context } from 'mocha';
import { isPostgresReachable } from './database.js';
import { dovecotBinary } from './dovecot.js';

/**
 * Skips the suite when `reason` names something this machine lacks, saying so in the output
 * (`skipped: …`, counted by the summary line); with CI=true, where `.ci/run` installs and starts
 * everything, the suite fails instead, so that nothing is skipped silently there.
 */
export function skipWithout(context: Context, reason: string | null): void {
  if (reason === null) return;
  if (process.env.CI === 'true') throw new Error(`${reason}; required when CI=true`);
  process.stdout.write(`skipped: ${reason}\n`);
  context.skip();
}

/** Why PostgreSQL cannot be used (not reachable on 127.0.0.1:5432), or null. */
export async function postgresMissing(): Promise<string | null> {
  return (await isPostgresReachable()) ? null : 'PostgreSQL is not reachable on 127.0.0.1:5432';
}

/** Why a private Dovecot instance cannot run (not installed, or not root), or null. */
export function dovecotMissing(): string | null {
  if (!dovecotBinary()) return 'dovecot not installed (apt-get install dovecot-imapd)';
  if (process.getuid?.() !== 0) return 'a private Dovecot instance must be started as root';
  return null;
}
