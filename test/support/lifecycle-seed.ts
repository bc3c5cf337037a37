import { randomUUID } from 'node:crypto';
import { createAccounts } from '../../src/accounts/index.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { DirectoryBackend } from '../../src/store/sources/directory-backend.js';
import type { SourceKind } from '../../src/store/sources/source-backend.js';
import { Store } from '../../src/store/store.js';
import { quietLogger } from './database.js';
import { serverBody } from './fixtures.js';
import { rawMail } from './mail.js';

/**
 * The tenant the lifecycle CLI tests export, migrate and erase: written straight into a store.
 * An embedded database is seeded by running this file as a process of its own
 * (`seedEmbeddedInChild`): PGlite is one instance per process (typeorm-pglite keeps it in a
 * static), so a second embedded store opened in the test process would close and replace the
 * run's shared one.
 */

export const CUSTOMER = 'customer@example.net';

export interface Seeded {
  tenantId: string;
  /** The sources by message id, as stored. */
  sources: Record<string, string>;
  customerIds: string[];
  outboundToCustomer: string;
}

/**
 * A message as ingest stores it (row, delivery, source in `kind`): the rows are written here, in
 * SQL, so that the CLI under test finds a tenant with mail without an engine having run.
 */
async function seedMessage(
  store: Store,
  at: { tenantId: string; serverId: string; destinationId: string; dir: string },
  raw: string,
  from: string,
  kind: SourceKind | null,
  uid: number,
): Promise<string> {
  const id = randomUUID();
  await store.query(
    `INSERT INTO inbound_messages (id, tenant_id, server_id, mailbox, uid_validity, uid, status, message_id_header,
       dedupe_key, conversation_id, subject, from_address, from_name, recipients, received_at, ingested_at, size,
       classification, message_references, body_text, attachments, source_store, source_size)
     VALUES ($1, $2, $3, 'INBOX', 1, $4::int, 'routed', $5, $5, $6, 'Question ' || $4::int, $7, 'Someone',
       jsonb_build_object('to', jsonb_build_array(jsonb_build_object('address', 'support@example.com', 'name', '')),
                          'cc', '[]'::jsonb, 'deliveredTo', '[]'::jsonb, 'xOriginalTo', '[]'::jsonb),
       now(), now() - make_interval(secs => 100 - $4::int), $8::int, '{"autoReply":false,"bounce":false,"loop":false,"reasons":[]}',
       '[]', 'Hello', '[]', $9::text, CASE WHEN $9::text IS NULL THEN NULL ELSE $8::int END)`,
    [id, at.tenantId, at.serverId, uid, `m${uid}@example.net`, randomUUID(), from, Buffer.byteLength(raw), kind],
  );
  await store.query(
    `INSERT INTO inbound_deliveries (destination_id, seq, message_id, tenant_id) VALUES ($1, $2, $3, $4)`,
    [at.destinationId, uid, id, at.tenantId],
  );
  if (kind === 'postgres') {
    await store.query('INSERT INTO inbound_raw (message_id, raw) VALUES ($1, $2)', [id, Buffer.from(raw)]);
  } else if (kind === 'directory') {
    await new DirectoryBackend(at.dir, false).put({ tenantId: at.tenantId, messageId: id }, Buffer.from(raw));
  }
  return id;
}

/** Seeds the export tenant (five messages, two outgoing) into `store`. */
export async function seedExportTenant(store: Store, key: Buffer, blobDir: string): Promise<Seeded> {
  const accounts = createAccounts(store, new SecretSealer(key), quietLogger);
  const tenant = await accounts.tenants.create({ name: 'Export tenant' });
  const server = await accounts.servers.create(tenant.id, serverBody(1));
  const destination = await accounts.destinations.create(tenant.id, {
    name: 'Support',
    address: 'support@example.com',
    serverId: server.id,
  });
  const at = { tenantId: tenant.id, serverId: server.id, destinationId: destination.id, dir: blobDir };
  const sources = new Map<string, string>();
  const customerIds: string[] = [];
  const mails: Array<[string, SourceKind | null]> = [
    [CUSTOMER, 'postgres'],
    ['other@example.net', 'postgres'],
    [CUSTOMER, 'directory'],
    ['other@example.net', 'directory'],
    [CUSTOMER, null], // its source removed by retention
  ];
  for (const [i, [from, where]] of mails.entries()) {
    const raw = rawMail({ from: `Someone <${from}>`, body: `body ${i} \u00e9\u0000 of ${from}` });
    const id = await seedMessage(store, at, raw, from, where, i + 1);
    if (where !== null) sources.set(id, raw);
    if (from === CUSTOMER) customerIds.push(id);
  }
  const outboundToCustomer = randomUUID();
  for (const [id, to] of [
    [outboundToCustomer, CUSTOMER],
    [randomUUID(), 'other@example.net'],
  ] as const) {
    await store.query(
      `INSERT INTO outbound_messages (id, tenant_id, destination_id, server_id, status, message_id_header, subject, recipients, instance_id)
         VALUES ($1, $2, $3, $4, 'sent', $5, 'Re: your question', $6::jsonb, 'test-instance')`,
      [id, tenant.id, destination.id, server.id, `<${id}@example.com>`, JSON.stringify([to])],
    );
  }
  return { tenantId: tenant.id, sources: Object.fromEntries(sources), customerIds, outboundToCustomer };
}

// Run as a process: `<pgliteDir> <key base64> <blobDir>` seeds that embedded database, prints the JSON.
if (process.argv[1]?.endsWith('lifecycle-seed.ts')) {
  const [pgliteDir = '', key = '', blobDir = ''] = process.argv.slice(2);
  const store = await Store.open({ pgliteDir }, quietLogger);
  try {
    process.stdout.write(JSON.stringify(await seedExportTenant(store, Buffer.from(key, 'base64'), blobDir)));
  } finally {
    await store.close();
  }
}
