import { createAccounts } from '../../src/accounts/index.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { Store } from '../../src/store/store.js';
import { quietLogger } from './database.js';

/**
 * The database side of test/integration/erasure-crash.test.ts: the tenant it seeds and what it
 * reads back. On PostgreSQL the test calls these with its own store; an embedded database is
 * opened by running this file as a process of its own (`<mode> <pgliteDir> <json>`, the answer as
 * JSON on stdout), never while the engine has it open: PGlite is one instance per process
 * (typeorm-pglite keeps it in a static) and one process per data folder.
 */

export const CUSTOMER = 'customer@example.net';
export const OTHER = 'other@example.net';

export interface SeedRequest {
  key: string;
  customerMessages: number;
  otherMessages: number;
}

export interface Seeded {
  tenantId: string;
  /** The stored messages: id, sender and uid (even uids' sources go to the directory, odd to S3). */
  messages: Array<{ id: string; from_address: string; i: number }>;
}

export interface Inspection {
  receipt: { counts: Record<string, number>; finished: boolean } | null;
  customerRows: number;
  tenantRows: number;
  /** Tables with a row whose text mentions the customer's address. */
  tablesMentioning: string[];
  erasureSources: number;
}

/** A tenant with stored messages as ingest leaves them (rows and deliveries; the sources are the caller's). */
export async function seedErasureTenant(store: Store, request: SeedRequest): Promise<Seeded> {
  const accounts = createAccounts(store, new SecretSealer(Buffer.from(request.key, 'base64')), quietLogger);
  const tenant = await accounts.tenants.create({ name: 'Erasure crash' });
  const server = await accounts.servers.create(tenant.id, {
    name: 'Box',
    imap: { host: '127.0.0.1', port: 1, secure: false, user: 'box', auth: { method: 'password', password: 'x' } },
    smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
  });
  const destination = await accounts.destinations.create(tenant.id, {
    name: 'Support',
    address: 'support@example.com',
    serverId: server.id,
  });
  const total = request.customerMessages + request.otherMessages;
  const messages = await store.query<{ id: string; from_address: string; i: number }>(
    `INSERT INTO inbound_messages (id, tenant_id, server_id, mailbox, uid_validity, uid, status, message_id_header,
       dedupe_key, conversation_id, subject, from_address, from_name, recipients, received_at, ingested_at, size,
       classification, message_references, body_text, attachments, source_store, source_size)
     SELECT md5($1::text || i)::uuid, $1::uuid, $2::uuid, 'INBOX', 1, i, 'routed', 'm' || i || '@example.net', 'm' || i,
            md5('c' || i)::uuid, 'Order ' || i, CASE WHEN i <= $4 THEN $5 ELSE $6 END, 'Someone',
            jsonb_build_object('to', jsonb_build_array(jsonb_build_object('address', 'support@example.com', 'name', '')),
                               'cc', '[]'::jsonb, 'deliveredTo', '[]'::jsonb, 'xOriginalTo', '[]'::jsonb),
            now(), now() - make_interval(secs => $3 - i), 300,
            '{"autoReply":false,"bounce":false,"loop":false,"reasons":[]}', '[]', 'Hello', '[]',
            CASE WHEN i % 2 = 0 THEN 'directory' ELSE 's3' END, 300
       FROM generate_series(1, $3::int) AS i
     RETURNING id, from_address, uid::int AS i`,
    [tenant.id, server.id, total, request.customerMessages, CUSTOMER, OTHER],
  );
  await store.query(
    `INSERT INTO inbound_deliveries (destination_id, seq, message_id, tenant_id)
     SELECT $1, uid, id, tenant_id FROM inbound_messages WHERE tenant_id = $2`,
    [destination.id, tenant.id],
  );
  return { tenantId: tenant.id, messages };
}

/** What the erasure left of the customer in the database. */
export async function inspectErasure(store: Store, tenantId: string): Promise<Inspection> {
  const [receipt] = await store.query<{ counts: Record<string, number>; finished_at: Date | null }>(
    'SELECT counts, finished_at FROM erasures WHERE tenant_id = $1',
    [tenantId],
  );
  const count = async (sql: string, params: unknown[] = []): Promise<number> =>
    Number((await store.query<{ n: string }>(sql, params))[0]?.n);
  const tables = await store.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
  );
  const tablesMentioning: string[] = [];
  for (const { table_name } of tables) {
    const n = await count(`SELECT count(*) AS n FROM "${table_name}" t WHERE strpos(lower(t::text), $1) > 0`, [
      CUSTOMER,
    ]);
    if (n > 0) tablesMentioning.push(table_name);
  }
  return {
    receipt: receipt ? { counts: receipt.counts, finished: receipt.finished_at !== null } : null,
    customerRows: await count('SELECT count(*) AS n FROM inbound_messages WHERE tenant_id = $1 AND from_address = $2', [
      tenantId,
      CUSTOMER,
    ]),
    tenantRows: await count('SELECT count(*) AS n FROM inbound_messages WHERE tenant_id = $1', [tenantId]),
    tablesMentioning,
    erasureSources: await count('SELECT count(*) AS n FROM erasure_sources'),
  };
}

// Run as a process: `seed <pgliteDir> <SeedRequest json>` or `inspect <pgliteDir> <tenantId>`; prints the JSON.
if (process.argv[1]?.endsWith('erasure-crash-db.ts')) {
  const [mode = '', pgliteDir = '', arg = ''] = process.argv.slice(2);
  const store = await Store.open({ pgliteDir }, quietLogger);
  try {
    const answer =
      mode === 'seed'
        ? await seedErasureTenant(store, JSON.parse(arg) as SeedRequest)
        : await inspectErasure(store, arg);
    process.stdout.write(JSON.stringify(answer));
  } finally {
    await store.close();
  }
}
