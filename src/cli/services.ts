import { userInfo } from 'node:os';
import type { Accounts } from '../accounts/index.js';
import { runAs, type Actor } from '../shared/actor.js';
import { loadConfig } from '../config/config.js';
import { MailroomError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { openServices, type Services } from '../main.js';
import { isUuid } from '../shared/validation.js';

/**
 * Runs a CLI command against the services directly (not over HTTP). The embedded database is
 * one process's: while the engine runs on it, opening it is refused at once (DATABASE_LOCKED).
 */
export function withAccounts<T>(fn: (accounts: Accounts) => Promise<T>): Promise<T> {
  return withServices((services) => fn(services.accounts));
}

/** A tenant given by id or by name. */
export async function tenantIdOf(accounts: Accounts, ref: string): Promise<string> {
  if (isUuid(ref)) return ref;
  const match = (await accounts.tenants.list()).find((t) => t.name.toLowerCase() === ref.toLowerCase());
  if (!match) throw new MailroomError('TENANT_NOT_FOUND', `no tenant is named '${ref}'`);
  return match.id;
}

/** An e-mail server of a tenant given by id or by name. */
export async function serverIdOf(accounts: Accounts, tenantId: string, ref: string): Promise<string> {
  if (isUuid(ref)) return ref;
  const match = (await accounts.servers.list(tenantId)).find((s) => s.name.toLowerCase() === ref.toLowerCase());
  if (!match) throw new MailroomError('SERVER_NOT_FOUND', `this tenant has no e-mail server named '${ref}'`);
  return match.id;
}

/** A destination of a tenant given by id or by name. */
export async function destinationIdOf(accounts: Accounts, tenantId: string, ref: string): Promise<string> {
  if (isUuid(ref)) return ref;
  const match = (await accounts.destinations.list(tenantId)).find((d) => d.name.toLowerCase() === ref.toLowerCase());
  if (!match) throw new MailroomError('DESTINATION_NOT_FOUND', `this tenant has no destination named '${ref}'`);
  return match.id;
}

/** An id argument that must be a UUID, checked before the database sees it. */
export function uuidArg(value: string, what: string): string {
  if (isUuid(value)) return value;
  throw new MailroomError('VALIDATION_FAILED', `'${value}' is not ${what} (a UUID)`, { field: 'id' });
}

/** Like `withAccounts`, with everything `openServices` opens (store, sealer, config) for commands that need more. */
export async function withServices<T>(fn: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const logger = createLogger({
    // Quiet (warn) unless a level is configured; then the validated one, never the raw variable.
    level: process.env.MAILROOM_LOG_LEVEL?.trim() ? config.logLevel : 'warn',
    pretty: config.logPretty,
    stderr: true,
  });
  const services = await openServices(config, logger);
  try {
    // Changes a command makes are audited as the CLI's, naming the operating-system user.
    return await runAs(cliActor(), () => fn(services));
  } finally {
    await services.close();
  }
}

/** The audit log's "who" of a CLI command: "CLI" with the operating-system user running it. */
export function cliActor(): Actor {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER ?? `uid ${process.getuid?.() ?? '?'}`;
  }
  return { kind: 'cli', name: `CLI (${user})` };
}
