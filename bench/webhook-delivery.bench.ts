/**
 * Webhook delivery, as an agent application waits for it.
 *
 * Throughput: 10,000 routed events (BENCH_WEBHOOK_EVENTS) in the outbox of one destination, then
 * of 50, on PostgreSQL, to a plain receiver in a process of its own (bench/support/webhook-
 * receiver.ts: node:http, keep-alive, answers 200 at once). Mailroom: createWebhooks with its
 * default options, from start() until the receiver has every event. Baseline, same run, same
 * receiver: a bare Node client POSTing the same bodies, signed as Mailroom signs them, in seq
 * order per destination over a kept-alive agent, as many destinations at once as Mailroom's
 * `maxInFlight`, the bodies built beforehand (it reads no database). Interleaved rounds
 * (baseline, Mailroom, baseline, …); each Mailroom round is compared with the mean of the two
 * baselines around it, and the median round is reported. Target: ratio >= 0.8.
 *
 * End to end: 2,000 messages (BENCH_WEBHOOK_BACKLOG) appended to a private Dovecot mailbox;
 * from inbound's start() until the receiver has the last webhook, against the time the same
 * backlog takes to be routed with no webhook (its own mailbox and database). Target: at most 2×.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { createAccounts } from '../src/accounts/index.js';
import { createWebhooks } from '../src/inbound/webhooks/index.js';
import { routedEventsOf } from '../src/inbound/webhooks/event.js';
import { DEFAULT_WEBHOOK_OPTIONS } from '../src/inbound/webhooks/options.js';
import {
  EVENT_HEADER,
  IDEMPOTENCY_HEADER,
  signPayload,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
} from '../src/inbound/webhooks/signature.js';
import { AddressPolicy } from '../src/shared/address-policy.js';
import { SecretSealer } from '../src/shared/sealed-secrets.js';
import { Store } from '../src/store/store.js';
import type { WebhookDeliveryRow } from '../src/store/webhook-deliveries.js';
import { rawMail } from '../test/support/mail.js';
import { addCleanup } from '../test/support/cleanup.js';
import { createTestDatabase, quietLogger } from '../test/support/database.js';
import { routeMessages } from '../test/support/routed-messages.js';
import { appendMessages, prepareMailroom, runBench, startBenchDovecot, within } from './support/environment.js';
import { compare, emit, progress } from './support/report.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver-client.js';

const BENCH = 'webhook-delivery';
const EVENTS = Number(process.env.BENCH_WEBHOOK_EVENTS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_WEBHOOK_ROUNDS ?? 3);
const BACKLOG = Number(process.env.BENCH_WEBHOOK_BACKLOG ?? 2_000);
const SECRET = 'bench-webhook-secret-0123456789';
/** The batched round's destination setting (`webhookBatch`). */
const BATCH = { maxEvents: Number(process.env.BENCH_WEBHOOK_BATCH ?? 100), maxWaitMs: 0 };
/** Longest wait for one delivery run, ms. */
const RUN_TIMEOUT_MS = 10 * 60_000;

interface PreparedEvent {
  key: string;
  body: string;
}

runBench(BENCH, async () => {
  const receiver = await startWebhookReceiver();
  const databaseUrl = await createTestDatabase();
  const store = await Store.open({ databaseUrl }, quietLogger);
  addCleanup(() => store.close(), 'first');
  const sealer = new SecretSealer(randomBytes(32));
  // The receiver runs on this machine: private addresses allowed, as MAILROOM_WEBHOOK_ALLOW_PRIVATE does.
  const accounts = createAccounts(store, sealer, quietLogger, { webhookAddresses: AddressPolicy.allowPrivate() });

  for (const destinations of [1, 50]) {
    await throughput(store, sealer, accounts, receiver, destinations);
  }
  // Opt-in batches of 100 events a POST, against the same bare client POSTing them one by one.
  await throughput(store, sealer, accounts, receiver, 1, BATCH);
  await endToEnd(receiver);
});

async function throughput(
  store: Store,
  sealer: SecretSealer,
  accounts: ReturnType<typeof createAccounts>,
  receiver: WebhookReceiver,
  destinations: number,
  batch: typeof BATCH | null = null,
): Promise<void> {
  const tenant = await accounts.tenants.create({ name: `Bench ${destinations}${batch ? ' batched' : ''}` });
  const server = await accounts.servers.create(tenant.id, {
    name: 'Bench',
    imap: {
      host: '127.0.0.1',
      port: 1,
      secure: false,
      user: `bench-${destinations}${batch ? '-batched' : ''}`,
      auth: { method: 'password', password: 'x' },
    },
    smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
  });
  const perDestination = Math.ceil(EVENTS / destinations);
  const chains: PreparedEvent[][] = [];
  for (let d = 0; d < destinations; d += 1) {
    const destination = await accounts.destinations.create(tenant.id, {
      name: `Hooked ${d}`,
      address: `hooked-${d}@bench.example`,
      serverId: server.id,
      webhookUrl: receiver.url,
      webhookSecret: SECRET,
      ...(batch && { webhookBatch: batch }),
    });
    const target = { tenantId: tenant.id, serverId: server.id, destinationId: destination.id };
    await routeMessages(store, target, perDestination);
    // The baseline's bodies: the same events, built here, untimed.
    const rows: WebhookDeliveryRow[] = (
      await store.query<Record<string, unknown>>(
        'SELECT destination_id, seq, tenant_id, message_id FROM webhook_deliveries WHERE destination_id = $1 ORDER BY seq',
        [destination.id],
      )
    ).map(
      (r) =>
        ({
          destinationId: r.destination_id,
          seq: Number(r.seq),
          tenantId: r.tenant_id,
          messageId: r.message_id,
        }) as WebhookDeliveryRow,
    );
    const events = await routedEventsOf(store, rows);
    chains.push(
      rows.map((r) => {
        const e = events.get(r.seq);
        if (!e) throw new Error(`no event for seq ${r.seq}`);
        return { key: e.id, body: JSON.stringify(e) };
      }),
    );
  }
  const total = perDestination * destinations;
  progress(BENCH, `${destinations} destination(s): ${total} routed events in the outbox`);

  const mailroomRun = async (): Promise<number> => {
    await store.query(
      `UPDATE webhook_deliveries SET delivered_at = NULL, attempts = 0, lease_until = NULL, last_attempt_at = NULL,
              last_status = NULL, next_attempt_at = now() WHERE tenant_id = $1`,
      [tenant.id],
    );
    const webhooks = createWebhooks({
      store,
      sealer,
      logger: quietLogger,
      signals: { subscribe: () => () => undefined },
      addresses: AddressPolicy.allowPrivate(),
    });
    // A batch counts as one POST; the receiver counts each event of it (its own key).
    const { done } = await receiver.expect(total);
    const started = performance.now();
    webhooks.start();
    const { at, connections } = await within(done, RUN_TIMEOUT_MS, 'mailroom webhook run');
    await webhooks.stop();
    progress(BENCH, `mailroom: ${connections} connection(s)`);
    return at - started;
  };
  const baselineRun = async (): Promise<number> => {
    const { done } = await receiver.expect(total);
    const started = performance.now();
    await bareClient(receiver, chains, DEFAULT_WEBHOOK_OPTIONS.maxInFlight);
    const { at, connections } = await within(done, RUN_TIMEOUT_MS, 'baseline run');
    progress(BENCH, `baseline: ${connections} connection(s)`);
    return at - started;
  };

  const warm = { baseline: await baselineRun(), mailroom: await mailroomRun() };
  progress(BENCH, `warm-up: baseline ${Math.round(warm.baseline)} ms, mailroom ${Math.round(warm.mailroom)} ms`);
  const baselines = [await baselineRun()];
  const rounds: Array<{ mailroomMs: number; baselineMs: number; ratio: number }> = [];
  for (let r = 1; r <= ROUNDS; r += 1) {
    const mailroomMs = await mailroomRun();
    const after = await baselineRun();
    const baselineMs = ((baselines.at(-1) as number) + after) / 2;
    baselines.push(after);
    rounds.push({ mailroomMs, baselineMs, ratio: baselineMs / mailroomMs });
    progress(
      BENCH,
      `${destinations} dest, round ${r}: mailroom ${Math.round(mailroomMs)} ms, baseline ${Math.round(after)} ms`,
    );
  }
  const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[Math.floor(rounds.length / 2)] as (typeof rounds)[0];
  emit(
    compare(
      BENCH,
      `throughput-${destinations}-destination${destinations === 1 ? '' : 's'}${batch ? `-batched-${batch.maxEvents}` : ''}`,
      'events/s',
      (total / median.mailroomMs) * 1000,
      (total / median.baselineMs) * 1000,
      { ratioAtLeast: 0.8 },
      {
        events: total,
        destinations,
        ...(batch && { batch: `${batch.maxEvents} events a POST; baseline posts them one by one` }),
        mailroomMs: Math.round(median.mailroomMs),
        baselineMs: Math.round(median.baselineMs),
        rounds: rounds.map((r) => r.ratio.toFixed(3)).join(' '),
      },
    ),
  );
}

/** POSTs every chain in order, `concurrency` chains at a time, signed, over one kept-alive agent. */
async function bareClient(receiver: WebhookReceiver, chains: PreparedEvent[][], concurrency: number): Promise<void> {
  const agent = new Agent({ keepAlive: true });
  const post = (event: PreparedEvent): Promise<void> =>
    new Promise((resolve, reject) => {
      const timestamp = Math.floor(Date.now() / 1000);
      const req = request(
        {
          host: '127.0.0.1',
          port: receiver.port,
          path: '/hooks',
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(event.body),
            'user-agent': 'bare-client',
            [EVENT_HEADER]: 'message.routed',
            [IDEMPOTENCY_HEADER]: event.key,
            [TIMESTAMP_HEADER]: String(timestamp),
            [SIGNATURE_HEADER]: signPayload(SECRET, timestamp, event.body),
          },
        },
        (res) => {
          res.resume();
          res.once('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`receiver answered ${res.statusCode}`)),
          );
        },
      );
      req.once('error', reject);
      req.end(event.body);
    });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < chains.length) {
      const chain = chains[next++] as PreparedEvent[];
      for (const event of chain) await post(event);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, chains.length) }, worker));
  agent.destroy();
}

/** Dovecot backlog → routed → last webhook received, against routing alone. */
async function endToEnd(receiver: WebhookReceiver): Promise<void> {
  const routingUser = 'routing@bench.example';
  const hookedUser = 'hooked@bench.example';
  const address = 'support@bench.example';
  const dovecot = await startBenchDovecot([routingUser, hookedUser]);
  for (const user of [routingUser, hookedUser]) {
    await appendMessages(dovecot, user, BACKLOG, (n) =>
      rawMail({ to: address, subject: `Backlog ${n}`, messageId: `backlog-${user}-${n}@bench.example` }),
    );
  }
  progress(BENCH, `appended ${BACKLOG} messages to each of two mailboxes`);

  const routedAll = (events: EventEmitter<{ routed: [unknown] }>): Promise<number> =>
    new Promise((resolve) => {
      let routed = 0;
      events.on('routed', () => {
        routed += 1;
        if (routed === BACKLOG) resolve(performance.now());
      });
    });

  const plain = await prepareMailroom(dovecot, routingUser, address);
  const plainRouted = routedAll(plain.inbound.service.events as EventEmitter<{ routed: [unknown] }>);
  const plainStart = performance.now();
  await plain.inbound.start();
  const routingMs = (await within(plainRouted, RUN_TIMEOUT_MS, 'routing')) - plainStart;
  await plain.inbound.stop();
  progress(BENCH, `routing alone: ${BACKLOG} messages in ${Math.round(routingMs)} ms`);

  const hooked = await prepareMailroom(
    dovecot,
    hookedUser,
    address,
    {},
    { webhookUrl: receiver.url, webhookSecret: SECRET },
  );
  const webhooks = createWebhooks({
    store: hooked.store,
    sealer: hooked.sealer,
    logger: quietLogger,
    signals: hooked.inbound.signals,
    addresses: AddressPolicy.allowPrivate(),
  });
  addCleanup(() => webhooks.stop(), 'first');
  const hookedRouted = routedAll(hooked.inbound.service.events as EventEmitter<{ routed: [unknown] }>);
  const { done } = await receiver.expect(BACKLOG);
  const started = performance.now();
  webhooks.start();
  await hooked.inbound.start();
  const routedAt = await within(hookedRouted, RUN_TIMEOUT_MS, 'routing with webhooks');
  const { at } = await within(done, RUN_TIMEOUT_MS, 'the last webhook');
  const endToEndMs = at - started;
  progress(
    BENCH,
    `with webhooks: routed in ${Math.round(routedAt - started)} ms, last webhook after ${Math.round(endToEndMs)} ms`,
  );
  emit(
    compare(
      BENCH,
      'end-to-end-backlog',
      'ms',
      endToEndMs,
      routingMs,
      { ratioAtMost: 2 },
      {
        messages: BACKLOG,
        routedWithWebhooksMs: Math.round(routedAt - started),
        routingAloneMs: Math.round(routingMs),
        lastWebhookMs: Math.round(endToEndMs),
      },
    ),
  );
}
