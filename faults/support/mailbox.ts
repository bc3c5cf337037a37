/**
 * The IMAP side of the fault runs: a private Dovecot (test/support/dovecot.ts) with one user,
 * messages appended through imapflow, and what the engine routed of them (read in its database).
 */
import { ImapFlow } from 'imapflow';
import { addCleanup } from '../../test/support/cleanup.js';
import { startDovecot, type DovecotInstance } from '../../test/support/dovecot.js';
import { rawMail } from '../../test/support/mail.js';
import { sql } from './environment.js';

export const MAILBOX_USER = 'support@faults.example';
export const MAILBOX_PASSWORD = 'faults-pw';
/** Messages appended per pipelined round. */
const APPEND_WINDOW = 100;

export async function privateDovecot(): Promise<DovecotInstance> {
  const dovecot = await startDovecot({ users: [{ user: MAILBOX_USER, password: MAILBOX_PASSWORD }] });
  addCleanup(() => dovecot.close());
  return dovecot;
}

/** A logged-in imapflow client of the mailbox (the customer's side: it appends mail). */
export async function mailboxClient(dovecot: DovecotInstance): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: dovecot.host,
    port: dovecot.port,
    secure: false,
    auth: { user: MAILBOX_USER, pass: MAILBOX_PASSWORD },
    logger: false,
  });
  client.on('error', () => undefined); // 'close' follows; a failed append says so
  await client.connect();
  addCleanup(async () => {
    if (client.usable) await client.logout().catch(() => undefined);
    client.close();
  }, 'first');
  return client;
}

/** Appends messages with Message-IDs `<key@faults.example>`, APPEND_WINDOW at a time. */
export async function appendAll(client: ImapFlow, keys: readonly string[]): Promise<void> {
  for (let start = 0; start < keys.length; start += APPEND_WINDOW) {
    await Promise.all(keys.slice(start, start + APPEND_WINDOW).map((key) => appendOne(client, key)));
  }
}

export async function appendOne(client: ImapFlow, key: string): Promise<void> {
  await client.append('INBOX', rawMail({ to: MAILBOX_USER, subject: key, messageId: `${key}@faults.example` }));
}

/** The key of every routed message, once per delivery (a message routed twice is there twice). */
export async function routedKeys(databaseUrl: string): Promise<string[]> {
  const rows = await sql<{ id: string }>(
    databaseUrl,
    `SELECT m.message_id_header AS id FROM inbound_deliveries d JOIN inbound_messages m ON m.id = d.message_id`,
  );
  return rows.map((r) => r.id.replace(/^<|@faults\.example>?$/g, ''));
}

/** How many deliveries the engine committed so far (0 before its tables exist). */
export async function routedCount(databaseUrl: string): Promise<number> {
  const rows = await sql<{ n: string }>(databaseUrl, 'SELECT count(*) AS n FROM inbound_deliveries').catch(() => []);
  return Number(rows[0]?.n ?? 0);
}
