import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CredentialService } from '../../src/auth/credentials.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { collectOutboundRequests } from '../../src/engine-metrics.js';
import { OutboundService, type OutboundDeps } from '../../src/outbound/outbound-service.js';
import { renderMetrics } from '../../src/shared/metrics.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { quietLogger } from '../support/database.js';
import { eventually } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * Outgoing mail managed from any instance: dead letters listed from the database, and a message
 * cancelled or a dead letter re-queued or deleted by the instance whose spool holds the file
 * (`h` is instance `test-instance` with the API; `other` a second engine instance over the same
 * database with a spool of its own, driven without HTTP).
 */
forEachBackend('outbound actions across instances', (kind) => {
  let h: ApiHarness;
  let smtp: SmtpHarness;
  let tenantId: string;
  let other: OutboundService;
  let otherSpool: string;

  beforeEach(async () => {
    h = await openApiHarness(kind);
    smtp = await startSmtpHarness({});
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Actions' })).body.id;
    otherSpool = await mkdtemp(join(tmpdir(), 'mailroom-other-spool-'));
    other = otherInstance();
  });
  afterEach(async () => {
    await other.stop();
    await h.close();
    await smtp.close();
    await rm(otherSpool, { recursive: true, force: true });
  });

  function otherInstance(announce?: OutboundDeps['announce'], store: OutboundDeps['store'] = h.store): OutboundService {
    return new OutboundService({
      store,
      credentials: new CredentialService(h.sealer),
      logger: quietLogger,
      spoolDir: otherSpool,
      instanceId: 'instance-b',
      options: { fsync: false, probeIntervalMs: 300, heartbeatIntervalMs: 0 },
      ...(announce && { announce }),
    });
  }

  async function account(): Promise<{ serverId: string; destinationId: string }> {
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Relay',
      imap: { host: '127.0.0.1', port: 1, user: 'box@example.com', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'none' } },
      enabled: false,
    });
    assert.equal(server.status, 201, server.raw);
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      fromText: 'ACME Support',
      serverId: server.body.id,
    });
    assert.equal(destination.status, 201, destination.raw);
    return { serverId: server.body.id, destinationId: destination.body.id };
  }

  const outboundUrl = (destinationId: string, id = ''): string =>
    `/api/v1/tenants/${tenantId}/destinations/${destinationId}/outbound${id && `/${id}`}`;

  async function statusUntil(destinationId: string, id: string, status: string): Promise<Obj> {
    return eventually(async () => {
      const s = (await h.call<Obj>('GET', outboundUrl(destinationId, id))).body;
      return s.status === status ? s : undefined;
    });
  }

  /**
   * Waits until `engine` holds nothing more to send for the server: what a cancellation took out
   * of its queue can no longer go, so a count of the relay's messages taken then is final.
   */
  async function nothingQueued(engine: OutboundService, serverId: string): Promise<void> {
    await eventually(async () => (engine.status(serverId).queue?.depth === 0 ? true : undefined));
  }

  async function deadFiles(spoolDir: string, serverId: string): Promise<string[]> {
    return (await readdir(join(spoolDir, 'dead', serverId)).catch(() => [])).filter((f) => f.endsWith('.msg'));
  }

  it('lists a dead letter of another instance everywhere; that instance re-queues and then deletes it on request', async () => {
    const { serverId, destinationId } = await account();
    smtp.faults.rejectRecipient('*', 550, '5.1.1 no such user', { times: 1 });
    await other.start();
    const accepted = await other.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'x' });
    await statusUntil(destinationId, accepted.id, 'failed');

    // Listed by this instance (the file is on the other's disk), by server and by tenant.
    const byServer = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/dead-letters`);
    assert.equal(byServer.status, 200, byServer.raw);
    assert.equal(byServer.body.deadLetters.length, 1);
    const [dead] = byServer.body.deadLetters;
    assert.equal(dead.id, accepted.id);
    assert.equal(dead.instanceId, 'instance-b');
    assert.equal(dead.serverId, serverId);
    assert.match(dead.reply, /550/);
    assert.ok(dead.failedAt);
    const byTenant = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters?serverId=${serverId}`);
    assert.deepEqual(byTenant.body, byServer.body);

    // Re-queued through the other instance: asked here (202), carried out there.
    const requeue = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/dead-letters/${accepted.id}/requeue`,
      {},
    );
    assert.equal(requeue.status, 202, requeue.raw);
    assert.equal(requeue.body.state, 'requested');
    assert.equal(requeue.body.instanceId, 'instance-b');
    assert.equal(requeue.body.holderRunning, false, 'instance-b has not announced itself');
    const location = `/api/v1/tenants/${tenantId}/outbound-requests/${requeue.body.requestId}`;
    assert.equal(requeue.headers.location, location, 'the 202 says where to follow the request');
    const waiting = await h.call<Obj>('GET', location);
    assert.equal(waiting.status, 200, waiting.raw);
    assert.deepEqual(
      { state: waiting.body.state, action: waiting.body.action, id: waiting.body.id, doneAt: waiting.body.doneAt },
      { state: 'requested', action: 'requeue', id: accepted.id, doneAt: null },
    );
    assert.equal(await h.outbound.carryOutRequests(), 0, 'nothing for this instance');
    assert.equal(await other.carryOutRequests(), 1);
    const done = await h.call<Obj>('GET', location);
    assert.equal(done.body.state, 'done', done.raw);
    assert.ok(done.body.doneAt);
    const otherTenant = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Someone else' })).body.id;
    const hidden = await h.call<Obj>(
      'GET',
      `/api/v1/tenants/${otherTenant}/outbound-requests/${requeue.body.requestId}`,
    );
    assert.equal(hidden.status, 404, 'another tenant does not see it');
    await smtp.waitFor(1);
    await statusUntil(destinationId, accepted.id, 'sent');
    assert.deepEqual((await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters`)).body.deadLetters, []);

    // A second one, deleted through the other instance.
    smtp.faults.rejectRecipient('*', 550, '5.1.1 no such user', { times: 1 });
    const second = await other.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'y' });
    await statusUntil(destinationId, second.id, 'failed');
    assert.equal((await deadFiles(otherSpool, serverId)).length, 1);
    const deleted = await h.call<Obj>('DELETE', `/api/v1/tenants/${tenantId}/dead-letters/${second.id}`);
    assert.equal(deleted.status, 202, deleted.raw);
    const twice = await h.call<Obj>('DELETE', `/api/v1/tenants/${tenantId}/dead-letters/${second.id}`);
    assert.equal(twice.status, 202, twice.raw);
    assert.equal(await other.carryOutRequests(), 2);
    assert.deepEqual(await deadFiles(otherSpool, serverId), []);
    const first = await h.call<Obj>('GET', String(deleted.headers.location));
    assert.equal(first.body.state, 'done', first.raw);
    const second2 = await h.call<Obj>('GET', String(twice.headers.location));
    assert.equal(second2.body.state, 'refused', second2.raw);
    assert.match(second2.body.outcome, /is not a dead letter/);
    const gone = await h.call<Obj>('DELETE', `/api/v1/tenants/${tenantId}/dead-letters/${second.id}`);
    assert.equal(gone.status, 404, 'no longer a dead letter: refused at once');

    assert.deepEqual((await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters`)).body.deadLetters, []);
    assert.equal((await h.call<Obj>('GET', outboundUrl(destinationId, second.id))).body.status, 'failed');
  });

  it('cancels a deferred message here: never sent, kept as a dead letter that can be re-queued', async () => {
    const { serverId, destinationId } = await account();
    smtp.faults.replyAt('mailFrom', 451, '4.3.0 try later');
    await h.outbound.start();
    const accepted = await h.call<Obj>('POST', outboundUrl(destinationId), { to: ['customer@example.net'], text: 'x' });
    assert.equal(accepted.status, 202, accepted.raw);
    await statusUntil(destinationId, accepted.body.id, 'deferred');

    const cancelled = await h.call<Obj>('POST', `${outboundUrl(destinationId, accepted.body.id)}/cancel`, {});
    assert.equal(cancelled.status, 200, cancelled.raw);
    assert.equal(cancelled.body.status, 'failed');
    assert.match(cancelled.body.lastReply, /cancelled/);
    // A cancel is no SMTP reply: the 451 of the deferral is not shown with it.
    assert.equal(cancelled.body.lastResponseCode, null, cancelled.raw);
    assert.deepEqual(
      cancelled.body.recipientOutcomes.map((r: Obj) => [r.address, r.reply, r.responseCode]),
      [['customer@example.net', 'not sent: cancelled through the API', null]],
      cancelled.raw,
    );
    assert.equal((await deadFiles(h.spoolDir, serverId)).length, 1);
    assert.equal((await h.outbound.spool.list(serverId)).length, 0, 'out of the queue');

    smtp.faults.clear(); // (its retry was a minute away; the next test shows a cancelled message stays unsent)

    const again = await h.call<Obj>('POST', `${outboundUrl(destinationId, accepted.body.id)}/cancel`, {});
    assert.equal(again.status, 409, again.raw);
    assert.equal(again.body.error.code, 'OUTBOUND_NOT_WAITING');

    const requeued = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/dead-letters/${accepted.body.id}/requeue`,
      {},
    );
    assert.equal(requeued.status, 204, requeued.raw);
    await smtp.waitFor(1);
    const sent = await statusUntil(destinationId, accepted.body.id, 'sent');
    assert.equal(sent.attempts, 1, 'attempts start again');

    const late = await h.call<Obj>('POST', `${outboundUrl(destinationId, accepted.body.id)}/cancel`, {});
    assert.equal(late.status, 409, late.raw);
    assert.match(late.body.error.message, /already sent/);
    const unknown = await h.call<Obj>('POST', `${outboundUrl(destinationId, randomUUID())}/cancel`, {});
    assert.equal(unknown.status, 404, unknown.raw);
    assert.equal(unknown.body.error.code, 'OUTBOUND_NOT_FOUND');
  });

  it('cancels a message queued behind an unreachable relay here: when the relay is back it is not sent', async () => {
    const { serverId, destinationId } = await account();
    await smtp.stop();
    await h.outbound.start();
    const kept = await h.call<Obj>('POST', outboundUrl(destinationId), {
      to: ['a@example.net'],
      subject: 'kept',
      text: 'x',
    });
    assert.equal(kept.status, 202, kept.raw);
    const dropped = await h.call<Obj>('POST', outboundUrl(destinationId), {
      to: ['b@example.net'],
      subject: 'dropped',
      text: 'x',
    });
    assert.equal(dropped.status, 202, dropped.raw);
    const cancelled = await h.call<Obj>('POST', `${outboundUrl(destinationId, dropped.body.id)}/cancel`, {});
    assert.equal(cancelled.status, 200, cancelled.raw);
    assert.equal(cancelled.body.status, 'failed');

    await smtp.start(); // the queue is probed every 300 ms and drains
    const [received] = await smtp.waitFor(1);
    assert.deepEqual(received?.envelope.to, ['a@example.net'], 'the other message goes');
    await statusUntil(destinationId, kept.body.id, 'sent');
    await nothingQueued(h.outbound, serverId);
    assert.equal(smtp.messages.length, 1, 'the cancelled one does not');
    assert.deepEqual(
      (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters`)).body.deadLetters.map((d: Obj) => d.id),
      [dropped.body.id],
    );
    assert.equal((await h.outbound.spool.list(serverId)).length, 0);
  });

  it('cancels a message while its connection is being made: it never reaches MAIL FROM, whatever the relay says then', async () => {
    const { serverId, destinationId } = await account();
    const send = async (subject: string): Promise<string> => {
      const res = await h.call<Obj>('POST', outboundUrl(destinationId), { to: ['c@example.net'], subject, text: 'x' });
      assert.equal(res.status, 202, res.raw);
      return res.body.id;
    };
    // The queue has taken the message and waits for the (delayed) greeting.
    const connected = (before: number): Promise<unknown> =>
      eventually(async () => (smtp.connections > before ? true : undefined));
    const cancel = async (id: string, before: number): Promise<void> => {
      await connected(before);
      const cancelled = await h.call<Obj>('POST', `${outboundUrl(destinationId, id)}/cancel`, {});
      assert.equal(cancelled.status, 200, cancelled.raw);
      assert.equal(cancelled.body.status, 'failed');
    };
    await h.outbound.start();

    // The relay greets late and then refuses: the cancelled message stays failed, not deferred.
    smtp.faults.slow({ delayMs: 1_500 });
    smtp.faults.replyAt('connect', 421, '4.3.2 not now', { times: 1 });
    let before = smtp.connections;
    const refused = await send('refused');
    await cancel(refused, before);
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // the greeting's refusal has come
    const afterRefusal = (await h.call<Obj>('GET', outboundUrl(destinationId, refused))).body;
    assert.equal(afterRefusal.status, 'failed', JSON.stringify(afterRefusal));
    assert.match(afterRefusal.lastReply, /cancelled/);

    // The relay greets late and then accepts: the cancelled message is given up before MAIL FROM,
    // also when it is cancelled twice at once (the second joins the first).
    before = smtp.connections;
    const dropped = await send('dropped');
    await connected(before);
    const both = await Promise.all(
      [1, 2].map(() => h.call<Obj>('POST', `${outboundUrl(destinationId, dropped)}/cancel`, {})),
    );
    assert.deepEqual(
      both.map((r) => [r.status, r.body.status]),
      [
        [200, 'failed'],
        [200, 'failed'],
      ],
    );
    smtp.faults.slow(undefined);
    const kept = await send('kept');
    const [received] = await smtp.waitFor(1);
    assert.match(received?.raw.toString() ?? '', /Subject: kept/);
    await statusUntil(destinationId, kept, 'sent');
    await nothingQueued(h.outbound, serverId);
    assert.equal(smtp.messages.length, 1, 'only the message not cancelled went');
    assert.equal((await h.call<Obj>('GET', outboundUrl(destinationId, dropped))).body.status, 'failed');
    assert.deepEqual((await deadFiles(h.spoolDir, serverId)).length, 2, 'both kept as dead letters');
  });

  it('never sends a cancelled message that a listing or a read of the folder made before the move brings back', async () => {
    const { destinationId } = await account();
    await h.outbound.start();
    // The relay answers each command 300 ms late, so the attempt under way is given up before MAIL
    // FROM about 700 ms after it began; the cancellation moves the file out of the queue only after
    // 1,200 ms, so the queue lists the folder again while the file is still there, and a read of
    // the file, begun then, ends after the cancellation is over.
    smtp.faults.slow({ delayMs: 300 });
    const spool = h.outbound.spool;
    const deadLetter = spool.deadLetter.bind(spool);
    spool.deadLetter = async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      return deadLetter(...args);
    };
    const read = spool.read.bind(spool);
    spool.read = async (item) => {
      const found = await read(item);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      return found;
    };
    const before = smtp.connections;
    const sent = await h.call<Obj>('POST', outboundUrl(destinationId), { to: ['c@example.net'], text: 'x' });
    assert.equal(sent.status, 202, sent.raw);
    await eventually(async () => (smtp.connections > before ? true : undefined)); // its connection is being made
    const cancelled = await h.call<Obj>('POST', `${outboundUrl(destinationId, sent.body.id)}/cancel`, {});
    assert.equal(cancelled.status, 200, cancelled.raw);
    assert.equal(cancelled.body.status, 'failed');
    smtp.faults.slow(undefined);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    assert.equal(smtp.messages.length, 0, 'the cancelled message is not sent');
    assert.equal((await h.call<Obj>('GET', outboundUrl(destinationId, sent.body.id))).body.status, 'failed');
  });

  it('cancels a message waiting on another instance through that instance', async () => {
    const { serverId, destinationId } = await account();
    await smtp.stop(); // the relay is down: the message waits in the other instance's spool
    await other.start();
    const accepted = await other.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'x' });
    await h.store.leases.announce('owner-b', 'instance-b', 60_000); // as a running engine does
    const cancelled = await h.call<Obj>('POST', `${outboundUrl(destinationId, accepted.id)}/cancel`, {});
    assert.equal(cancelled.status, 202, cancelled.raw);
    assert.deepEqual(
      {
        state: cancelled.body.state,
        action: cancelled.body.action,
        instanceId: cancelled.body.instanceId,
        holderRunning: cancelled.body.holderRunning,
      },
      { state: 'requested', action: 'cancel', instanceId: 'instance-b', holderRunning: true },
    );
    // Carried out at the other instance's next look (a later one if that met the message on a connection attempt).
    await eventually(async () => ((await other.carryOutRequests()) === 1 ? true : undefined));
    const row = await h.store.outbound.byId(accepted.id);
    assert.equal(row?.status, 'failed');
    assert.match(row?.lastReply ?? '', /cancelled/);
    assert.equal((await deadFiles(otherSpool, serverId)).length, 1);

    await smtp.start();
    await nothingQueued(other, serverId);
    assert.equal(smtp.messages.length, 0, 'the relay is back and the cancelled message stays unsent');
  });

  it('lists the requests waiting for an instance that is not running; one withdrawn is never carried out', async () => {
    const { serverId, destinationId } = await account();
    await smtp.stop(); // the relay is down: both messages wait in the other instance's spool
    await other.start();
    const first = await other.accept(tenantId, destinationId, {
      to: ['customer@example.net'],
      subject: 'First',
      text: 'first',
    });
    const second = await other.accept(tenantId, destinationId, {
      to: ['customer@example.net'],
      subject: 'Second',
      text: 'second',
    });
    await other.stop(); // instance-b goes away with its spool

    const cancelFirst = await h.call<Obj>('POST', `${outboundUrl(destinationId, first.id)}/cancel`, {});
    const cancelSecond = await h.call<Obj>('POST', `${outboundUrl(destinationId, second.id)}/cancel`, {});
    assert.equal(cancelFirst.status, 202, cancelFirst.raw);
    assert.equal(cancelSecond.status, 202, cancelSecond.raw);
    const listUrl = `/api/v1/tenants/${tenantId}/outbound-requests`;
    const waiting = await h.call<Obj>('GET', listUrl);
    assert.equal(waiting.status, 200, waiting.raw);
    assert.deepEqual(
      waiting.body.requests.map((r: Obj) => [r.requestId, r.id, r.action, r.state, r.instanceId, r.holderRunning]),
      [
        [cancelSecond.body.requestId, second.id, 'cancel', 'requested', 'instance-b', false],
        [cancelFirst.body.requestId, first.id, 'cancel', 'requested', 'instance-b', false],
      ],
      'newest first, each saying its instance does not run',
    );
    assert.deepEqual(
      waiting.body.requests.map((r: Obj) => [r.serverId, r.subject]),
      [
        [serverId, 'Second'],
        [serverId, 'First'],
      ],
    );
    await collectOutboundRequests(h.store);
    const metrics = (await renderMetrics()).body;
    assert.match(
      metrics,
      /^mailroom_outbound_requests_waiting\{instance_id="instance-b",holder_running="false"\} 2$/m,
      'operators can alert on requests waiting for an instance that does not run',
    );
    assert.match(metrics, /^mailroom_outbound_requests_oldest_age_seconds\{instance_id="instance-b"\} \d/m);
    const ofServer = await h.call<Obj>('GET', `${listUrl}?serverId=${serverId}`);
    assert.equal(ofServer.body.requests.length, 2, ofServer.raw);
    const ofAnother = await h.call<Obj>('GET', `${listUrl}?serverId=${randomUUID()}`);
    assert.deepEqual(ofAnother.body.requests, [], 'none of another server');
    const otherTenant = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Someone else' })).body.id;
    const foreign = await h.call<Obj>('GET', `/api/v1/tenants/${otherTenant}/outbound-requests`);
    assert.deepEqual(foreign.body.requests, [], 'another tenant sees none of them');
    const foreignWithdraw = await h.call<Obj>(
      'DELETE',
      `/api/v1/tenants/${otherTenant}/outbound-requests/${cancelFirst.body.requestId}`,
    );
    assert.equal(foreignWithdraw.status, 404, 'nor withdraws them');
    const badState = await h.call<Obj>('GET', `${listUrl}?state=pending`);
    assert.equal(badState.status, 400, badState.raw);
    assert.match(badState.raw, /state/);

    const withdrawn = await h.call<Obj>('DELETE', `${listUrl}/${cancelFirst.body.requestId}`);
    assert.equal(withdrawn.status, 200, withdrawn.raw);
    assert.equal(withdrawn.body.state, 'withdrawn');
    assert.ok(withdrawn.body.doneAt);
    const again = await h.call<Obj>('DELETE', `${listUrl}/${cancelFirst.body.requestId}`);
    assert.equal(again.status, 409, again.raw);
    assert.equal(again.body.error.code, 'OUTBOUND_REQUEST_NOT_WAITING');
    assert.deepEqual(
      (await h.call<Obj>('GET', listUrl)).body.requests.map((r: Obj) => r.requestId),
      [cancelSecond.body.requestId],
      'the withdrawn request no longer waits',
    );
    await collectOutboundRequests(h.store);
    assert.match(
      (await renderMetrics()).body,
      /^mailroom_outbound_requests_waiting\{instance_id="instance-b",holder_running="false"\} 1$/m,
    );
    assert.deepEqual(
      (await h.call<Obj>('GET', `${listUrl}?state=all`)).body.requests.map((r: Obj) => [r.requestId, r.state]),
      [
        [cancelSecond.body.requestId, 'requested'],
        [cancelFirst.body.requestId, 'withdrawn'],
      ],
    );

    // instance-b comes back: the request still waiting is carried out, the withdrawn one is not.
    other = otherInstance();
    await other.start();
    assert.equal((await h.store.outbound.byId(second.id))?.status, 'failed', 'the second was cancelled');
    const firstStatus = (await h.store.outbound.byId(first.id))?.status;
    assert.ok(
      firstStatus === 'queued' || firstStatus === 'deferred',
      `the first still waits to be sent (${firstStatus})`,
    );
    assert.equal((await deadFiles(otherSpool, serverId)).length, 1);
    const settled = await h.call<Obj>('GET', `${listUrl}/${cancelSecond.body.requestId}`);
    assert.equal(settled.body.state, 'done', settled.raw);
    await smtp.start();
    await statusUntil(destinationId, first.id, 'sent');
    assert.deepEqual(
      smtp.messages.map((m) => m.raw.includes('first')),
      [true],
      'only the first is delivered',
    );
  });

  it('retires an instance that is gone: its waiting mail fails, its dead letters and requests go; back, it sends none of it', async () => {
    const { serverId, destinationId } = await account();
    await other.start();
    smtp.faults.rejectRecipient('*', 550, '5.1.1 no such user', { times: 1 });
    const dead = await other.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'dead' });
    await statusUntil(destinationId, dead.id, 'failed');
    await smtp.stop();
    const waiting = await other.accept(tenantId, destinationId, {
      to: ['customer@example.net'],
      subject: 'Waiting',
      text: 'waiting',
    });
    // A message whose delivery is on record although its file is still queued (the engine stopped in between).
    const delivered = await other.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'sent' });
    await other.stop(); // instance-b and its disk are gone
    await h.store.outbound.recordSent([
      {
        id: delivered.id,
        sentAt: new Date(),
        reply: '250 OK',
        responseCode: 250,
        attempts: 1,
        firstAttemptAt: new Date(),
      },
    ]);
    const cancel = await h.call<Obj>('POST', `${outboundUrl(destinationId, waiting.id)}/cancel`, {});
    assert.equal(cancel.status, 202, cancel.raw);

    const retireUrl = '/api/v1/cluster/instances/instance-b/retire';
    await h.store.leases.announce('owner-b', 'instance-b', 60_000);
    const running = await h.call<Obj>('POST', retireUrl, {});
    assert.equal(running.status, 409, running.raw);
    assert.equal(running.body.error.code, 'INSTANCE_RUNNING');
    await h.store.leases.leave('owner-b');
    const self = await h.call<Obj>('POST', '/api/v1/cluster/instances/test-instance/retire', {});
    assert.equal(self.status, 409, self.raw);
    assert.match(self.body.error.message, /it is this one/);

    const retired = await h.call<Obj>('POST', retireUrl, {});
    assert.equal(retired.status, 200, retired.raw);
    assert.deepEqual(
      {
        failedMessages: retired.body.failedMessages,
        unlistedDeadLetters: retired.body.unlistedDeadLetters,
        withdrawnRequests: retired.body.withdrawnRequests,
      },
      { failedMessages: 1, unlistedDeadLetters: 1, withdrawnRequests: 1 },
    );
    const given = (await h.call<Obj>('GET', outboundUrl(destinationId, waiting.id))).body;
    assert.equal(given.status, 'failed');
    assert.match(given.lastReply, /instance was retired/);
    assert.deepEqual((await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters`)).body.deadLetters, []);
    const request = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/outbound-requests/${cancel.body.requestId}`);
    assert.equal(request.body.state, 'withdrawn');

    // instance-b starts again after all, with its spool: nothing of it is sent, all of it is listed as dead letters.
    other = otherInstance();
    await other.start();
    await smtp.start();
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // longer than the relay probe
    assert.equal(smtp.messages.length, 0, 'the mail given up is not sent');
    assert.equal(await h.store.retiredInstances.has('instance-b'), false, 'its name is free again');
    const listed = (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters?serverId=${serverId}`)).body;
    assert.deepEqual(listed.deadLetters.map((d: Obj) => d.id).sort(), [dead.id, waiting.id].sort());
    assert.equal((await other.spool.list(serverId)).length, 0);
    assert.equal(
      (await h.store.outbound.byId(delivered.id))?.status,
      'sent',
      'the delivered one stays sent, its file gone',
    );
    assert.equal((await deadFiles(otherSpool, serverId)).length, 2);
  });

  it('never retires an instance while it starts: it announces itself before it looks whether it was retired', async () => {
    const { destinationId } = await account();
    await smtp.stop();
    await other.start();
    const waiting = await other.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'waiting' });
    await other.stop();
    // instance-b starts again, announced as its lease keeper will renew it: retiring it is refused.
    other = otherInstance({ owner: 'owner-b', ttlMs: 60_000 });
    await other.start();
    const refused = await h.call<Obj>('POST', '/api/v1/cluster/instances/instance-b/retire', {});
    assert.equal(refused.status, 409, refused.raw);
    assert.equal(refused.body.error.code, 'INSTANCE_RUNNING');
    const still = (await h.call<Obj>('GET', outboundUrl(destinationId, waiting.id))).body;
    assert.ok(['queued', 'deferred'].includes(still.status), `still waiting to be sent, not ${still.status}`);

    // Retiring and starting race: whichever goes first, the other sees it (retired before the
    // start looks, or announced before the retirement looks), never neither.
    for (let n = 0; n < 10; n += 1) {
      const name = `racing-${n}`;
      const [claimed, retired] = await Promise.all([
        h.store.retiredInstances.claim(name, { owner: `owner-${name}`, ttlMs: 60_000 }),
        h.store.retiredInstances.retire(name, 'retired'),
      ]);
      assert.equal(claimed, retired !== null, `round ${n}: started ${!claimed}, retired ${retired !== null}`);
      await h.store.leases.leave(`owner-${name}`);
    }
  });

  it('a start that outlasts its announcement renews it: the instance cannot be retired while it starts', async () => {
    await account();
    // instance-b's start is held up (a slow database, a large spool) for several announcement ttls.
    let holdUp: () => void = () => undefined;
    const heldUp = new Promise<void>((resolve) => (holdUp = resolve));
    let reached: () => void = () => undefined;
    const startReached = new Promise<void>((resolve) => (reached = resolve));
    const slowStore = new Proxy(h.store, {
      get(target, key) {
        const value: unknown = Reflect.get(target, key);
        if (key !== 'outbound') return typeof value === 'function' ? value.bind(target) : value;
        const outbound = value as typeof h.store.outbound;
        return new Proxy(outbound, {
          get(repo, name) {
            const method: unknown = Reflect.get(repo, name);
            if (name === 'listQueuedOf')
              return async (...args: Parameters<typeof outbound.listQueuedOf>) => {
                reached();
                await heldUp;
                return outbound.listQueuedOf(...args);
              };
            return typeof method === 'function' ? method.bind(repo) : method;
          },
        });
      },
    });
    other = otherInstance({ owner: 'owner-b', ttlMs: 400 }, slowStore);
    const starting = other.start();
    await startReached;
    await new Promise((resolve) => setTimeout(resolve, 1_200)); // three ttls
    const refused = await h.call<Obj>('POST', '/api/v1/cluster/instances/instance-b/retire', {});
    holdUp();
    await starting;
    assert.equal(refused.status, 409, `retired while it started: ${refused.raw}`);
    assert.equal(refused.body.error.code, 'INSTANCE_RUNNING');
  });

  it('retired while it ran on unannounced, sets aside unsent what the retirement gave up and keeps what it accepted since', async () => {
    const { serverId, destinationId } = await account();
    await smtp.stop();
    await other.start(); // announces nothing (no lease keeper): to the others it is gone
    const givenUp = await other.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'given up' });
    const retired = await h.call<Obj>('POST', '/api/v1/cluster/instances/instance-b/retire', {});
    assert.equal(retired.status, 200, retired.raw);
    assert.equal(retired.body.failedMessages, 1);
    const since = await other.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'accepted since' });

    await other.noticeRetirement();
    assert.equal(await h.store.retiredInstances.has('instance-b'), false, 'its name is free again');
    await smtp.start();
    await statusUntil(destinationId, since.id, 'sent');
    await nothingQueued(other, serverId);
    assert.deepEqual(
      smtp.messages.map((m) => m.raw.includes('accepted since')),
      [true],
      'only the message accepted since is sent',
    );
    const given = (await h.call<Obj>('GET', outboundUrl(destinationId, givenUp.id))).body;
    assert.equal(given.status, 'failed');
    assert.match(given.lastReply, /instance was retired/);
    const listed = (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters`)).body;
    assert.deepEqual(
      listed.deadLetters.map((d: Obj) => d.id),
      [givenUp.id],
      'listed again, to be re-queued if wanted',
    );
  });

  it('does not withdraw a request its instance is carrying out', async () => {
    const { destinationId } = await account();
    await smtp.stop();
    await other.start();
    const accepted = await other.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'x' });
    const cancel = await h.call<Obj>('POST', `${outboundUrl(destinationId, accepted.id)}/cancel`, {});
    assert.equal(cancel.status, 202, cancel.raw);
    // Taken up by instance-b (as its next look does first), which runs, and not settled yet.
    await h.store.leases.announce('owner-b', 'instance-b', 60_000);
    assert.equal(await h.store.outboundRequests.claim(cancel.body.requestId), true);
    const url = `/api/v1/tenants/${tenantId}/outbound-requests/${cancel.body.requestId}`;
    assert.equal((await h.call<Obj>('GET', url)).body.state, 'in-progress');
    const refused = await h.call<Obj>('DELETE', url);
    assert.equal(refused.status, 409, refused.raw);
    assert.match(refused.body.error.message, /being carried out by instance instance-b/);
    // Taken up by an instance that then stopped running (it announces itself no more): withdrawn after all.
    await h.store.leases.leave('owner-b');
    const second = await other.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'y' });
    const cancelSecond = await h.call<Obj>('POST', `${outboundUrl(destinationId, second.id)}/cancel`, {});
    assert.equal(await h.store.outboundRequests.claim(cancelSecond.body.requestId), true);
    const secondUrl = `/api/v1/tenants/${tenantId}/outbound-requests/${cancelSecond.body.requestId}`;
    const withdrawn = await h.call<Obj>('DELETE', secondUrl);
    assert.equal(withdrawn.status, 200, withdrawn.raw);
    assert.equal(withdrawn.body.state, 'withdrawn');

    // A claim cut short is taken again (at a later look if this one met the message on a connection attempt).
    await eventually(async () => ((await other.carryOutRequests()) === 1 ? true : undefined));
    assert.equal((await h.call<Obj>('GET', url)).body.state, 'done');
  });

  it('keeps the dead letters of a deleted server listable and deletable', async () => {
    const { serverId, destinationId } = await account();
    await smtp.stop();
    await h.outbound.start();
    const accepted = await h.call<Obj>('POST', outboundUrl(destinationId), { to: ['customer@example.net'], text: 'x' });
    assert.equal(accepted.status, 202, accepted.raw);
    assert.equal((await h.call('DELETE', `/api/v1/tenants/${tenantId}/destinations/${destinationId}`)).status, 204);
    const deleted = await h.call<Obj>('DELETE', `/api/v1/tenants/${tenantId}/servers/${serverId}?discardQueued=true`);
    assert.equal(deleted.status, 204, deleted.raw);
    await h.outbound.reconcile(); // this instance sets the file aside as a dead letter

    const list = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters`);
    assert.equal(list.body.deadLetters.length, 1, list.raw);
    assert.equal(list.body.deadLetters[0].serverId, serverId);
    assert.match(list.body.deadLetters[0].reply, /server was deleted/);
    const byServer = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/dead-letters`);
    assert.equal(byServer.status, 404, 'the server itself is gone');

    const gone = await h.call<Obj>('DELETE', `/api/v1/tenants/${tenantId}/dead-letters/${accepted.body.id}`);
    assert.equal(gone.status, 204, gone.raw);
    assert.deepEqual(await deadFiles(h.spoolDir, serverId), []);
    assert.deepEqual((await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters`)).body.deadLetters, []);
  });

  it('drops from the list a dead letter whose file was removed by hand, and says so', async () => {
    const { serverId, destinationId } = await account();
    smtp.faults.rejectRecipient('*', 550, '5.1.1 no such user');
    await h.outbound.start();
    const ids: string[] = [];
    for (const text of ['one', 'two']) {
      const res = await h.call<Obj>('POST', outboundUrl(destinationId), { to: ['c@example.net'], text });
      ids.push(res.body.id);
      await statusUntil(destinationId, res.body.id, 'failed');
    }
    for (const file of await deadFiles(h.spoolDir, serverId)) await rm(join(h.spoolDir, 'dead', serverId, file));

    const requeue = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/dead-letters/${ids[0]}/requeue`,
      {},
    );
    assert.equal(requeue.status, 404, requeue.raw);
    assert.match(requeue.body.error.message, /no longer in the spool of instance test-instance/);
    const deleted = await h.call<Obj>('DELETE', `/api/v1/tenants/${tenantId}/dead-letters/${ids[1]}`);
    assert.equal(deleted.status, 204, 'deleting one already gone is done');
    assert.deepEqual((await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters`)).body.deadLetters, []);
  });

  it('marks at start the dead letters its spool holds and unmarks those it no longer does', async () => {
    const { serverId, destinationId } = await account();
    smtp.faults.rejectRecipient('*', 550, '5.1.1 no such user');
    await other.start();
    const kept = await other.accept(tenantId, destinationId, { to: ['a@example.net'], text: 'kept' });
    const removed = await other.accept(tenantId, destinationId, { to: ['b@example.net'], text: 'removed' });
    await statusUntil(destinationId, removed.id, 'failed');
    await statusUntil(destinationId, kept.id, 'failed');
    await other.stop();
    // As before the marks existed (one file) and after a dead letter was deleted by hand (the other).
    await h.store.query(`UPDATE outbound_messages SET dead_lettered_at = NULL WHERE id = $1`, [kept.id]);
    const file = (await deadFiles(otherSpool, serverId)).find((f) => f.includes(removed.id)) as string;
    await rm(join(otherSpool, 'dead', serverId, file));

    other = otherInstance();
    await other.start();
    const list = (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/dead-letters`)).body.deadLetters as Obj[];
    assert.deepEqual(
      list.map((d) => d.id),
      [kept.id],
    );
  });
});
