import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { RetentionJob } from '../../src/lifecycle/retention-job.js';
import { metricsRegistry } from '../../src/shared/metrics.js';
import { quietLogger, sharedStore } from '../support/database.js';
import { addRouteTarget, forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { routeMessages, type RouteTarget } from '../support/routed-messages.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

async function deletedTotal(kind: string): Promise<number> {
  const metric = (await metricsRegistry.getSingleMetric('mailroom_retention_deleted_total')?.get()) as
    { values: Array<{ labels: Record<string, string>; value: number }> } | undefined;
  return metric?.values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

forEachBackend('retention per tenant', (kind) => {
  let h: ApiHarness;
  let target: RouteTarget;
  let other: RouteTarget;

  before(async function () {
    this.timeout(180_000); // the first open of the embedded database takes long on a loaded machine
    await sharedStore(kind);
  });
  beforeEach(async () => {
    // Unclaimed mail is kept for 30 days (the operator's floor) whatever the tenant's retention.
    h = await openApiHarness(kind);
    target = await addRouteTarget(h, 'Kept briefly');
    other = await addRouteTarget(h, 'Kept forever', 2);
  });
  afterEach(async () => {
    await h.close();
  });

  /** Messages routed `ageDays` ago; `state` of their delivery. */
  async function messagesAged(
    t: RouteTarget,
    count: number,
    ageDays: number,
    state: 'acked' | 'unclaimed',
  ): Promise<string[]> {
    await routeMessages(h.store, t, count);
    const rows = await h.store.query<{ id: string }>(
      `SELECT id FROM inbound_messages WHERE tenant_id = $1 AND ingested_at > now() - interval '1 minute'`,
      [t.tenantId],
    );
    await h.store.query(
      `UPDATE inbound_messages SET ingested_at = now() - make_interval(days => $2) WHERE id = ANY($1::uuid[])`,
      [rows.map((r) => r.id), ageDays],
    );
    const ids = rows.map((r) => r.id);
    await h.store.query(
      `UPDATE inbound_deliveries SET created_at = now() - make_interval(days => $2),
              claimed_by = CASE WHEN $3 THEN 'agent' END, acked_at = CASE WHEN $3 THEN now() END
        WHERE message_id = ANY($1::uuid[])`,
      [ids, ageDays, state === 'acked'],
    );
    await h.store.query(
      `INSERT INTO inbound_raw (message_id, raw) SELECT u.id, 'raw' FROM unnest($1::uuid[]) AS u(id)`,
      [ids],
    );
    await h.store.query(
      `UPDATE inbound_messages SET source_store = 'postgres', source_size = 3 WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    // Webhook rows as a destination with a webhook has them, delivered.
    await h.store.query(
      `INSERT INTO webhook_deliveries (destination_id, seq, tenant_id, message_id, delivered_at, created_at)
       SELECT destination_id, seq, tenant_id, message_id, now(), now() - make_interval(days => $2)
         FROM inbound_deliveries WHERE message_id = ANY($1::uuid[])`,
      [ids, ageDays],
    );
    return ids;
  }

  async function outboundAged(t: RouteTarget, status: string, ageDays: number): Promise<string> {
    const id = randomUUID();
    await h.store.query(
      `INSERT INTO outbound_messages (id, tenant_id, destination_id, server_id, status, message_id_header, subject, recipients,
         instance_id, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'Re: hello', '["customer@example.net"]', 'test-instance', now() - make_interval(days => $7))`,
      [id, t.tenantId, t.destinationId, t.serverId, status, `<${id}@example.com>`, ageDays],
    );
    return id;
  }

  async function count(sql: string, params: unknown[] = []): Promise<number> {
    return Number((await h.store.query<{ n: string }>(sql, params))[0]?.n);
  }

  it('keeps everything by default and answers the policy through the API', async () => {
    const res = await h.call<Obj>('GET', `/api/v1/tenants/${target.tenantId}/retention`);
    assert.equal(res.status, 200, res.raw);
    assert.deepEqual(res.body, {
      rawSourceDays: null,
      messageBodyDays: null,
      messageDays: null,
      outboundDays: null,
      logDays: null,
    });
    await messagesAged(target, 3, 400, 'acked');
    await outboundAged(target, 'sent', 400);
    const report = await h.lifecycle.job.runOnce();
    assert.equal(
      Object.values(report ?? {}).reduce((a, b) => a + b, 0),
      0,
    );
    assert.equal(await count('SELECT count(*) AS n FROM inbound_messages'), 3);
    assert.equal(await count('SELECT count(*) AS n FROM outbound_messages'), 1);
    const bad = await h.call<Obj>('PUT', `/api/v1/tenants/${target.tenantId}/retention`, { messageDays: 0 });
    assert.equal(bad.status, 400, bad.raw);
    assert.match(bad.body.error.field, /messageDays/);
  });

  it('refuses a body or source kept longer than its message, and audits each change (who, before, after)', async () => {
    const url = `/api/v1/tenants/${target.tenantId}/retention`;
    assert.equal((await h.call<Obj>('PUT', url, { messageDays: 90, outboundDays: 30 })).status, 200);
    const longer = await h.call<Obj>('PUT', url, { messageBodyDays: 180 });
    assert.equal(longer.status, 400, longer.raw);
    assert.equal(longer.body.error.field, 'messageBodyDays');
    assert.match(longer.body.error.message, /messageDays \(90\)/);
    const source = await h.call<Obj>('PUT', url, { rawSourceDays: 30, messageDays: 20 });
    assert.equal(source.body.error.field, 'rawSourceDays');
    // PUT changes the fields given; the others stay.
    const merged = await h.call<Obj>('PUT', url, { messageBodyDays: 60 });
    assert.deepEqual(merged.body, {
      rawSourceDays: null,
      messageBodyDays: 60,
      messageDays: 90,
      outboundDays: 30,
      logDays: null,
    });
    const audit = await h.call<Obj>('GET', `/api/v1/audit?tenantId=${target.tenantId}`);
    const changes = audit.body.entries.filter((e: Obj) => e.action === 'retention.changed');
    assert.deepEqual(
      changes.map((e: Obj) => [e.actor.name, e.target.id, e.detail]),
      [
        [
          'administrator (MAILROOM_API_TOKEN)',
          target.tenantId,
          { before: { messageBodyDays: null }, after: { messageBodyDays: 60 } },
        ],
        [
          'administrator (MAILROOM_API_TOKEN)',
          target.tenantId,
          { before: { messageDays: null, outboundDays: null }, after: { messageDays: 90, outboundDays: 30 } },
        ],
      ],
    );
  });

  it('removes exactly what is due, in small batches, and nothing still waiting', async () => {
    const put = await h.call<Obj>('PUT', `/api/v1/tenants/${target.tenantId}/retention`, {
      rawSourceDays: 7,
      messageBodyDays: 30,
      messageDays: 90,
      outboundDays: 30,
      logDays: 14,
    });
    assert.equal(put.status, 200, put.raw);
    const fresh = await messagesAged(target, 4, 1, 'acked');
    const sourceDue = await messagesAged(target, 3, 10, 'acked');
    const bodyDue = await messagesAged(target, 2, 40, 'acked');
    const due = await messagesAged(target, 7, 100, 'acked');
    // Unclaimed and younger than the 30-day floor: waiting, kept whole however old its retention says.
    const waiting = await messagesAged(target, 2, 20, 'unclaimed');
    // Unclaimed for longer than the floor: no longer protected.
    const abandoned = await messagesAged(target, 1, 120, 'unclaimed');
    const otherTenant = await messagesAged(other, 3, 400, 'acked');
    const sentOld = await outboundAged(target, 'sent', 40);
    const queuedOld = await outboundAged(target, 'queued', 40);
    const deferredOld = await outboundAged(target, 'deferred', 40);
    const sentNew = await outboundAged(target, 'sent', 5);
    await h.store.query(
      `INSERT INTO smtp_send_log (server_id, sent_at, recorded) VALUES ($1, now() - interval '20 days', true),
         ($1, now() - interval '30 minutes', true), ($2, now() - interval '400 days', true)`,
      [target.serverId, other.serverId],
    );
    const before = await deletedTotal('messages');

    // Batches of 2: every kind takes several statements.
    const job = new RetentionJob({
      store: h.store,
      logger: quietLogger,
      dropDeadLetter: async () => true,
      options: { batchSize: 2, waitingFloorDays: 30 },
    });
    const report = await job.runOnce();
    assert.ok(report);
    assert.equal(report.messages, due.length + abandoned.length);
    assert.equal(report.sources, sourceDue.length + bodyDue.length);
    assert.equal(report.bodies, bodyDue.length);
    assert.equal(report.outbound, 1);
    assert.equal(report.send_log, 1);
    // Delivered webhook rows past 14 days: those of the 40- and 20-day-old messages (the older went with their messages).
    assert.equal(report.webhook_log, bodyDue.length + waiting.length);
    assert.equal((await deletedTotal('messages')) - before, due.length + abandoned.length);

    const left = new Set((await h.store.query<{ id: string }>('SELECT id FROM inbound_messages')).map((r) => r.id));
    for (const id of [...fresh, ...sourceDue, ...bodyDue, ...waiting, ...otherTenant]) assert.ok(left.has(id), id);
    for (const id of [...due, ...abandoned]) assert.ok(!left.has(id), id);
    const withSource = new Set(
      (await h.store.query<{ message_id: string }>('SELECT message_id FROM inbound_raw')).map((r) => r.message_id),
    );
    assert.deepEqual([...withSource].sort(), [...fresh, ...waiting, ...otherTenant].sort());
    assert.equal(
      await count(`SELECT count(*) AS n FROM inbound_messages WHERE source_store IS NULL`),
      sourceDue.length + bodyDue.length,
    );
    assert.equal(await count(`SELECT count(*) AS n FROM inbound_messages WHERE body_text IS NULL`), bodyDue.length);
    // Deliveries of deleted messages went with them; the waiting ones are untouched.
    assert.equal(
      await count(`SELECT count(*) AS n FROM inbound_deliveries WHERE message_id = ANY($1::uuid[])`, [due]),
      0,
    );
    assert.equal(
      await count(
        `SELECT count(*) AS n FROM inbound_deliveries WHERE message_id = ANY($1::uuid[]) AND claimed_by IS NULL`,
        [waiting],
      ),
      2,
    );
    const outbound = new Set(
      (await h.store.query<{ id: string }>('SELECT id FROM outbound_messages')).map((r) => r.id),
    );
    assert.deepEqual([...outbound].sort(), [queuedOld, deferredOld, sentNew].sort());
    assert.ok(!outbound.has(sentOld));
    // The send log keeps the last hours (the hourly limit) and every other tenant's.
    assert.equal(await count(`SELECT count(*) AS n FROM smtp_send_log`), 2);

    // A second run finds nothing more.
    const again = await job.runOnce();
    assert.equal(
      Object.values(again ?? {}).reduce((a, b) => a + b, 0),
      0,
    );

    // Each run is recorded per tenant, newest first, with what it deleted (kinds with none left out).
    const runs = await h.call<Obj>('GET', `/api/v1/tenants/${target.tenantId}/retention/runs`);
    assert.equal(runs.status, 200, runs.raw);
    assert.equal(runs.body.runs.length, 2);
    assert.deepEqual(runs.body.runs[0].removed, {});
    assert.deepEqual(
      runs.body.runs[1].removed,
      Object.fromEntries(Object.entries(report).filter(([k, n]) => n > 0 && k !== 'orphans')),
    );
    assert.ok(runs.body.runs[0].startedAt >= runs.body.runs[1].finishedAt);
    // A tenant that keeps everything has no runs; the job keeps a tenant's newest `keepRuns`.
    const none = await h.call<Obj>('GET', `/api/v1/tenants/${other.tenantId}/retention/runs`);
    assert.deepEqual(none.body, { runs: [] });
    const keepingOne = new RetentionJob({
      store: h.store,
      logger: quietLogger,
      dropDeadLetter: async () => true,
      options: { keepRuns: 1 },
    });
    await job.stop(); // releases the job's lease
    assert.ok(await keepingOne.runOnce());
    const kept = await h.call<Obj>('GET', `/api/v1/tenants/${target.tenantId}/retention/runs`);
    assert.equal(kept.body.runs.length, 1);
  });

  it('runs on one instance at a time', async () => {
    await h.call<Obj>('PUT', `/api/v1/tenants/${target.tenantId}/retention`, { messageDays: 1 });
    assert.equal(await h.store.lifecycle.holdJob('retention', 'another-instance', 60_000), true);
    assert.equal(await h.lifecycle.job.runOnce(), null, 'another instance holds the job');
    await h.store.lifecycle.releaseJob('retention', 'another-instance');
    assert.ok(await h.lifecycle.job.runOnce());
  });
});
