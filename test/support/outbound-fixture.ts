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
