import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createAccounts } from '../../src/accounts/index.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Store } from '../../src/store/store.js';
import type { TraceFilters } from '../../src/store/trace-search.js';
import { forEachBackend } from '../support/api-harness.js';
import { quietLogger, resetStore, sharedStore } from '../support/database.js';

/** [20000] messages: enough that reading a tenant's mail newest first costs more than an index. */
const MESSAGES = 20_000;

/**
 * The trace search by address and by subject reads its indexes (migration 0041) rather than a
 * tenant's mail newest first (1.1 s and 1.8 s at 100,000 messages without them), and still finds
 * what the filters name: a sender as written, a To or Cc recipient, a part of the subject in
 * any case.
 */
forEachBackend('trace search indexes', (kind) => {
  let store: Store;
  let tenantId: string;

  before(async function () {
    this.timeout(120_000);
    store = await sharedStore(kind);
    await resetStore(store);
    const accounts = createAccounts(store, new SecretSealer(randomBytes(32)), quietLogger);
    tenantId = (await accounts.tenants.create({ name: 'Indexed' })).id;
    const server = await accounts.servers.create(tenantId, {
      name: 'Main',
      imap: { host: 'imap.example.com', user: 'support@example.com', auth: { method: 'password', password: 'x' } },
      smtp: { host: 'smtp.example.com', port: 587, auth: { mode: 'imap' } },
    });
    const destination = await accounts.destinations.create(tenantId, {
      name: 'Support',
      address: 'support@example.com',
      serverId: server.id,
    });
    // Every hundredth message has a Cc of its own; senders are spelled with capitals.
    await store.query(
      `INSERT INTO inbound_messages (id, tenant_id, server_id, mailbox, uid_validity, uid, status, message_id_header,
         dedupe_key, conversation_id, subject, from_address, from_name, recipients, received_at, ingested_at, size,
         classification, message_references, body_text, attachments)
       SELECT md5('in' || i)::uuid, $1, $2, 'INBOX', 1, i, 'routed', 'm' || i || '@example.net',
              'mid:m' || i || '@example.net', md5('c' || i)::uuid, 'Order ' || i || ' delivery late',
              'Customer' || (i % 5000) || '@Example.net', 'Customer',
              jsonb_build_object('to', jsonb_build_array(jsonb_build_object('address', 'support@example.com', 'name', '')),
                'cc', CASE WHEN i % 100 = 0 THEN jsonb_build_array(jsonb_build_object('address', 'copy' || i || '@example.org', 'name', ''))
                      ELSE '[]'::jsonb END,
                'deliveredTo', '[]'::jsonb, 'xOriginalTo', '[]'::jsonb),
              now() - make_interval(secs => $3 - i), now() - make_interval(secs => $3 - i), 2000,
              '{"autoReply":false,"bounce":false,"loop":false,"reasons":[]}', '[]', 'Hello', '[]'
         FROM generate_series(1, $3::int) AS i`,
      [tenantId, server.id, MESSAGES],
    );
    await store.query(
      `INSERT INTO outbound_messages (id, tenant_id, destination_id, server_id, status, message_id_header,
         conversation_id, subject, recipients, attempts, created_at, sent_at, instance_id)
       SELECT md5('out' || i)::uuid, $1, $2, $3, 'sent', 'r' || i || '@mailroom.invalid', md5('c' || i)::uuid,
              'Re: Order ' || i, jsonb_build_array('reply' || i || '@example.net'), 1, now(), now(), 'test'
         FROM generate_series(1, $4::int) AS i`,
      [tenantId, destination.id, server.id, MESSAGES],
    );
    await store.query('ANALYZE inbound_messages');
    await store.query('ANALYZE outbound_messages');
  });

  after(async () => {
    await resetStore(store);
  });

  async function plan(filters: TraceFilters): Promise<string> {
    const { sql, params } = await store.traceSearch.statement(tenantId, filters, null, 51);
    const rows = await store.query<Record<string, string>>(`EXPLAIN ${sql}`, params);
    return rows.map((r) => Object.values(r)[0]).join('\n');
  }

  async function subjects(filters: TraceFilters): Promise<string[]> {
    return (await store.traceSearch.search(tenantId, filters, null, 51)).map((h) => h.subject).sort();
  }

  it('finds by subject through the trigram indexes, case ignored', async () => {
    const text = await plan({ subject: 'ORDER 12345 ' });
    assert.match(text, /inbound_messages_subject_trgm_idx/, text);
    // Outbound's (20,000 short rows here) is chosen once reading them all costs more.
    assert.deepEqual(await subjects({ subject: 'ORDER 12345' }), ['Order 12345 delivery late', 'Re: Order 12345']);
  });

  it('finds by address through the sender and recipient indexes: a sender as written, a Cc, an outbound To', async () => {
    const text = await plan({ address: 'customer77@example.net' });
    assert.match(text, /inbound_messages_sender_idx/, text);
    assert.match(text, /inbound_messages_recipients_idx/, text);
    assert.match(text, /outbound_messages_recipients_idx/, text);
    assert.deepEqual(await subjects({ address: 'Customer77@Example.net' }), [
      'Order 10077 delivery late',
      'Order 15077 delivery late',
      'Order 5077 delivery late',
      'Order 77 delivery late',
    ]);
    assert.deepEqual(await subjects({ address: 'copy1200@example.org' }), ['Order 1200 delivery late']);
    assert.deepEqual(await subjects({ to: 'copy1200@example.org' }), ['Order 1200 delivery late']);
    assert.deepEqual(await subjects({ address: 'reply1200@example.net' }), ['Re: Order 1200']);
    assert.equal((await store.traceSearch.search(tenantId, { from: 'SUPPORT@example.com' }, null, 51)).length, 51);
  });
});
