/**
 * The message trace's search over many stored messages on PostgreSQL (issue 26): one tenant's
 * `BENCH_TRACE_MESSAGES` (200,000 here; the figure is 1,000,000) inbound messages, with
 * an outbound reply for every tenth, and the trace events a routed message gets (routed, webhook
 * delivered, claimed, acknowledged), written in bulk by SQL. Then `BENCH_TRACE_QUERIES` (200)
 * searches each by address, Message-ID, subject and a word a quarter of the subjects have, through
 * the service the API answers with (newest first, one page of 50). Figures: p50 and p99 per kind of search (target p99 <= 200 ms)
 * and the storage the trace costs per message (trace_events with its indexes).
 */
import { randomBytes } from 'node:crypto';
import { createAccounts } from '../src/accounts/index.js';
import { SecretSealer } from '../src/shared/sealed-secrets.js';
import { Store } from '../src/store/store.js';
import { TraceService } from '../src/trace/trace-service.js';
import { createTestDatabase, quietLogger } from '../test/support/database.js';
import { addCleanup } from '../test/support/cleanup.js';
import { runBench } from './support/environment.js';
import { compare, emit, progress } from './support/report.js';

const BENCH = 'trace';
const MESSAGES = Number(process.env.BENCH_TRACE_MESSAGES ?? 200_000);
const QUERIES = Number(process.env.BENCH_TRACE_QUERIES ?? 200);
/** Rows generated per INSERT statement. */
const CHUNK = 50_000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

runBench(BENCH, async () => {
  const databaseUrl = await createTestDatabase();
  const store = await Store.open({ databaseUrl, poolSize: 4 }, quietLogger);
  addCleanup(() => store.close(), 'first');
  const accounts = createAccounts(store, new SecretSealer(randomBytes(32)), quietLogger);
  const tenant = await accounts.tenants.create({ name: 'Bench' });
  const server = await accounts.servers.create(tenant.id, {
    name: 'Main',
    imap: { host: 'imap.example.com', user: 'support@example.com', auth: { method: 'password', password: 'x' } },
    smtp: { host: 'smtp.example.com', port: 587, auth: { mode: 'imap' } },
  });
  const destination = await accounts.destinations.create(tenant.id, {
    name: 'Support',
    address: 'support@example.com',
    serverId: server.id,
  });

  const started = Date.now();
  for (let from = 1; from <= MESSAGES; from += CHUNK) {
    const to = Math.min(MESSAGES, from + CHUNK - 1);
    // Messages as ingest stores them (a short body, no raw source), one a second back in time.
    await store.query(
      `INSERT INTO inbound_messages (id, tenant_id, server_id, mailbox, uid_validity, uid, status, message_id_header,
         dedupe_key, conversation_id, subject, from_address, from_name, recipients, received_at, ingested_at, size,
         classification, message_references, body_text, attachments)
       SELECT md5('in' || i)::uuid, $1, $2, 'INBOX', 1, i, 'routed', 'm' || i || '@example.net',
              'mid:m' || i || '@example.net', md5('c' || i)::uuid,
              'Order ' || i || ' ' || (ARRAY['delivery late','invoice question','refund','password reset'])[1 + i % 4],
              'customer' || (i % 50000) || '@example.net', 'Customer ' || (i % 50000),
              jsonb_build_object('to', jsonb_build_array(jsonb_build_object('address', 'support@example.com', 'name', '')),
                                 'cc', '[]'::jsonb, 'deliveredTo', '[]'::jsonb, 'xOriginalTo', '[]'::jsonb),
              now() - make_interval(secs => $4 - i), now() - make_interval(secs => $4 - i), 2000,
              '{"autoReply":false,"bounce":false,"loop":false,"reasons":[]}', '[]', 'Hello, message ' || i, '[]'
         FROM generate_series($3::int, $5::int) AS i`,
      [tenant.id, server.id, from, MESSAGES, to],
    );
    await store.query(
      `INSERT INTO inbound_deliveries (destination_id, seq, message_id, tenant_id)
       SELECT $1, i, md5('in' || i)::uuid, $2 FROM generate_series($3::int, $4::int) AS i`,
      [destination.id, tenant.id, from, to],
    );
    // The events of a routed message delivered, claimed and acknowledged, as the engine writes them.
    await store.query(
      `INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
       SELECT $1, md5('in' || i)::uuid, now() - make_interval(secs => $4 - i) + make_interval(secs => e.n), e.type,
              CASE e.type
                WHEN 'routed' THEN jsonb_build_object('destinations', jsonb_build_array(jsonb_build_object(
                  'id', $2::text, 'header', 'to', 'address', 'support@example.com')))
                WHEN 'webhook-delivered' THEN jsonb_build_object('destinationId', $2::text, 'attempt', 1, 'status', 200)
                WHEN 'claimed' THEN jsonb_build_object('destinationId', $2::text, 'agent', 'alice', 'by', 'desk',
                  'tokenId', $2::text)
                ELSE jsonb_build_object('destinationId', $2::text, 'by', 'desk', 'tokenId', $2::text)
              END
         FROM generate_series($3::int, $5::int) AS i,
              (VALUES (0, 'routed'), (1, 'webhook-delivered'), (2, 'claimed'), (3, 'acknowledged')) AS e(n, type)`,
      [tenant.id, destination.id, from, MESSAGES, to],
    );
    // A reply to every tenth, with its accepted and sent events.
    await store.query(
      `INSERT INTO outbound_messages (id, tenant_id, destination_id, server_id, status, message_id_header,
         conversation_id, subject, recipients, attempts, created_at, sent_at, instance_id)
       SELECT md5('out' || i)::uuid, $1, $2, $3, 'sent', 'r' || i || '@mailroom.invalid', md5('c' || i)::uuid,
              'Re: Order ' || i, jsonb_build_array('customer' || (i % 50000) || '@example.net'), 1,
              now() - make_interval(secs => $5 - i - 5), now() - make_interval(secs => $5 - i - 6), 'bench'
         FROM generate_series($4::int, $6::int) AS i WHERE i % 10 = 0`,
      [tenant.id, destination.id, server.id, from, MESSAGES, to],
    );
    await store.query(
      `INSERT INTO trace_events (tenant_id, message_id, at, type, detail)
       SELECT $1, md5('out' || i)::uuid, now() - make_interval(secs => $3 - i - 5), e.type, e.detail::jsonb
         FROM generate_series($2::int, $4::int) AS i,
              (VALUES ('accepted', '{"by":"desk","recipients":1}'), ('sent', '{"attempt":1,"code":250,"reply":"250 2.0.0 OK"}')) AS e(type, detail)
        WHERE i % 10 = 0`,
      [tenant.id, from, MESSAGES, to],
    );
    progress(BENCH, `stored ${to} of ${MESSAGES} messages`);
  }
  await store.query('ANALYZE');
  progress(BENCH, `generated in ${Date.now() - started} ms`);

  const trace = new TraceService(store);
  const pick = (i: number): number => 1 + ((i * 7919) % MESSAGES);
  const kinds: Array<[string, (i: number) => Record<string, string>]> = [
    ['address', (i) => ({ address: `customer${pick(i) % 50000}@example.net` })],
    ['messageId', (i) => ({ messageId: `<m${pick(i)}@example.net>` })],
    ['subject', (i) => ({ subject: `Order ${pick(i)} ` })],
    // A word a quarter of the subjects have: a page fills from the newest messages at once.
    ['common subject', (i) => ({ subject: ['delivery late', 'invoice', 'refund', 'password'][i % 4] ?? '' })],
  ];
  for (const [name, filters] of kinds) {
    const times: number[] = [];
    let hits = 0;
    for (let i = 0; i < QUERIES; i += 1) {
      const t0 = performance.now();
      const page = await trace.search(tenant.id, filters(i));
      times.push(performance.now() - t0);
      hits += page.messages.length;
    }
    times.sort((a, b) => a - b);
    const p50 = percentile(times, 50);
    const p99 = percentile(times, 99);
    emit(
      compare(
        BENCH,
        `${name} p99`,
        'ms',
        Number(p99.toFixed(1)),
        200,
        { valueAtMost: 200 },
        {
          messages: MESSAGES,
          queries: QUERIES,
          p50Ms: Number(p50.toFixed(1)),
          meanHits: Number((hits / QUERIES).toFixed(1)),
        },
      ),
    );
  }
  const [size] = await store.query<{ bytes: string; events: string }>(
    `SELECT pg_total_relation_size('trace_events')::text AS bytes, (SELECT count(*) FROM trace_events)::text AS events`,
  );
  const bytes = Number(size?.bytes ?? 0);
  const perMessage = bytes / (MESSAGES * 1.1);
  emit(
    compare(BENCH, 'storage per message', 'bytes', Math.round(perMessage), Math.round(perMessage), null, {
      traceBytes: bytes,
      events: Number(size?.events ?? 0),
      messages: Math.round(MESSAGES * 1.1),
    }),
  );
});
