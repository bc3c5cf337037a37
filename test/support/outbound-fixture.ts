import type { Accounts } from '../../src/accounts/index.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import type { Store, StoreKind } from '../../src/store/store.js';
import { resetStore, sharedStore } from './database.js';

/** What an outbound suite runs against: an emptied shared store, an SMTP harness, a spool folder of its own. */
export interface OutboundFixture {
  store: Store;
  smtp: SmtpHarness;
  spoolDir: string;
}

/** Opens an {@link OutboundFixture}; `name` tells the spool folder apart. Close it with {@link closeOutboundFixture}. */
export async function openOutboundFixture(kind: StoreKind, name: string): Promise<OutboundFixture> {
  const store = await sharedStore(kind);
  await resetStore(store);
  const smtp = await startSmtpHarness({});
  const spoolDir = await mkdtemp(join(tmpdir(), `mailroom-${name}-`));
  return { store, smtp, spoolDir };
}

/** Stops the harness and removes the spool folder (the shared store stays open for other suites). */
export async function closeOutboundFixture(fixture: Pick<OutboundFixture, 'smtp' | 'spoolDir'>): Promise<void> {
  await fixture.smtp.close();
  await rm(fixture.spoolDir, { recursive: true, force: true });
}

/** The ids of a tenant with one account that only sends, and the destination that sends through it. */
export interface SendingAccount {
  tenantId: string;
  serverId: string;
  destinationId: string;
}

/**
 * Creates a tenant (`tenant`), an account whose mail goes to the SMTP relay on `relayPort` of
 * 127.0.0.1 without a login (its IMAP side disabled, never connected; `smtp` adds settings such as
 * `rateLimitPerHour`), and a destination `address` on it.
 */
export async function createSendingAccount(
  accounts: Accounts,
  options: { tenant: string; address: string; relayPort: number; fromText?: string; smtp?: Record<string, unknown> },
): Promise<SendingAccount> {
  const tenant = await accounts.tenants.create({ name: options.tenant });
  const server = await accounts.servers.create(tenant.id, {
    name: `Relay of ${options.tenant}`,
    enabled: false,
    imap: { host: '127.0.0.1', port: 1, user: options.address, auth: { method: 'password', password: 'x' } },
    smtp: { host: '127.0.0.1', port: options.relayPort, auth: { mode: 'none' }, ...options.smtp },
  });
  const destination = await accounts.destinations.create(tenant.id, {
    name: options.tenant,
    address: options.address,
    serverId: server.id,
    ...(options.fromText !== undefined && { fromText: options.fromText }),
  });
  return { tenantId: tenant.id, serverId: server.id, destinationId: destination.id };
}
