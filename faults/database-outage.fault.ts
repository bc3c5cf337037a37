/**
 * Database outage during mixed traffic: sends (6 at a time), reads of the message feed and the
 * server status, and customers writing in to a Dovecot mailbox, all the while; the run's own
 * PostgreSQL cluster is stopped (fast shutdown: sessions cut with 57P01, new connections refused)
 * for FAULTS_OUTAGE_MS (10 s) and started again. Promises: the engine process lives throughout;
 * while the database is down it answers only 503 DATABASE_UNAVAILABLE (no 500, no refused or
 * dropped connection, at any time); within 10 s of the database's return it accepts sends and
 * answers reads again (`recoveryMs`); every 202 is delivered once and every arrival routed once.
 * `errors` counts the answers while the database was stopping, down and starting.
 */
import { startSmtpHarness } from '../src/harness/smtp-harness.js';
import { addCleanup } from '../test/support/cleanup.js';
import {
  EngineProcess,
  answerKey,
  engineEnv,
  outboundIdOf,
  privatePostgres,
  runFault,
  sleep,
  until,
  workDir,
} from './support/environment.js';
import {
  MAILBOX_PASSWORD,
  MAILBOX_USER,
  appendOne,
  mailboxClient,
  privateDovecot,
  routedKeys,
} from './support/mailbox.js';
import { Tally, progress, reconcile } from './support/report.js';

const FAULT = 'database-outage';
const OUTAGE_MS = Number(process.env.FAULTS_OUTAGE_MS ?? 10_000);
/** The promise: working again within this long after the database is back, ms. */
const RECOVERY_TARGET_MS = 10_000;
type Phase = 'before' | 'outage' | 'after';
type Route = 'send' | 'feed' | 'status';

runFault(FAULT, { dovecot: true }, async () => {
  const postgres = await privatePostgres();
  const dovecot = await privateDovecot();
  const dir = await workDir(FAULT);
  const smtp = await startSmtpHarness({});
  addCleanup(() => smtp.close());
  const engine = await EngineProcess.start(engineEnv(postgres.url, dir), dir);
  const api = engine.api();
  const tenant = await api.tenant('Outage');
  const server = await api.server(tenant, 'Mailbox', {
    user: MAILBOX_USER,
    password: MAILBOX_PASSWORD,
    imapPort: dovecot.port,
    smtpPort: smtp.port,
  });
  const destination = await api.destination(tenant, server, MAILBOX_USER);

  let phase: Phase = 'before';
  let traffic = true;
  const tallies: Record<Phase, Tally> = { before: new Tally(), outage: new Tally(), after: new Tally() };
  const lastOk = new Map<Route, number>();
  const accepted = new Set<string>();
  let sent = 0;
  const routes: Record<Route, () => ReturnType<typeof api.call>> = {
    send: () =>
      api.call('POST', `/tenants/${tenant}/destinations/${destination}/outbound`, {
        to: ['customer@example.net'],
        subject: `outage ${sent++}`,
        text: 'hello',
      }),
    feed: () => api.call('GET', `/tenants/${tenant}/destinations/${destination}/messages?limit=50`),
    status: () => api.call('GET', `/tenants/${tenant}/servers/${server}/status`),
  };
  const worker = async (order: Route[]): Promise<void> => {
    for (let i = 0; traffic; i += 1) {
      const route = order[i % order.length] as Route;
      const at = phase;
      const answer = await routes[route]();
      tallies[at].add(`${route} ${answerKey(answer)}`);
      if (answer.status === 200 || answer.status === 202) lastOk.set(route, Date.now());
      if (route === 'send' && answer.status === 202) accepted.add(answer.body.id as string);
      if (answer.status !== 202 && answer.status !== 200) await sleep(20); // no busy loop on refusals
    }
  };
  const client = await mailboxClient(dovecot);
  let arrived = 0;
  const arrivals = async (): Promise<void> => {
    while (traffic) {
      await appendOne(client, `arrival-${arrived}`);
      arrived += 1;
      await sleep(100);
    }
  };
  const workers = [
    arrivals(),
    ...Array.from({ length: 6 }, () => worker(['send'])),
    worker(['feed', 'status']),
    worker(['status', 'feed']),
  ];
  addCleanup(async () => {
    traffic = false;
    await Promise.allSettled(workers);
  }, 'first');

  await sleep(3_000);
  progress(FAULT, `database down for ${OUTAGE_MS} ms`);
  phase = 'outage';
  await postgres.stop();
  await sleep(OUTAGE_MS);
  await postgres.start();
  const backAt = Date.now();
  const working = (): boolean => (['send', 'feed', 'status'] as const).every((r) => (lastOk.get(r) ?? 0) > backAt);
  const recovered = await until(working, 30_000, 20);
  phase = 'after';
  const recoveryMs = recovered ? Math.max(...[...lastOk.values()]) - backAt : null;
  progress(FAULT, `recovered after ${recoveryMs} ms; traffic for 3 s more`);
  await sleep(3_000);
  traffic = false;
  await Promise.all(workers);

  // Everything accepted delivered once; everything that arrived routed once.
  const sentIds = (): string[] => smtp.messages.map((m) => outboundIdOf(m.raw) ?? '?');
  await until(() => reconcile(accepted, sentIds()).lost === 0, 60_000, 200);
  const arrivalKeys = Array.from({ length: arrived }, (_, n) => `arrival-${n}`);
  await until(async () => reconcile(arrivalKeys, await routedKeys(postgres.url)).lost === 0, 60_000, 200);
  await sleep(1_000);
  const alive = engine.alive;
  await engine.stop();
  const outbound = reconcile(accepted, sentIds());
  const inbound = reconcile(arrivalKeys, await routedKeys(postgres.url));

  const during = tallies.outage.toJSON();
  const everything = [tallies.before, tallies.outage, tallies.after].flatMap((t) => t.keys());
  const notUnavailable = Object.keys(during).filter((key) => !/ (200|202|503 DATABASE_UNAVAILABLE)$/.test(key));
  const internal = everything.filter((key) => / 5\d\d/.test(key) && !/ 503 DATABASE_UNAVAILABLE$/.test(key));
  const connection = everything.filter((key) => !/ \d{3}( |$)/.test(key));
  const pass =
    alive &&
    outbound.lost + inbound.lost === 0 &&
    outbound.duplicated + inbound.duplicated === 0 &&
    notUnavailable.length === 0 &&
    internal.length === 0 &&
    connection.length === 0 &&
    recoveryMs !== null &&
    recoveryMs <= RECOVERY_TARGET_MS;
  return {
    fault: FAULT,
    lost: outbound.lost + inbound.lost,
    duplicated: outbound.duplicated + inbound.duplicated,
    errors: during,
    recoveryMs,
    pass,
    expect: `engine alive; only 503 DATABASE_UNAVAILABLE while down (no 500, no refused connection); working within ${RECOVERY_TARGET_MS} ms of the return; 0 lost, 0 duplicated`,
    details: {
      outageMs: OUTAGE_MS,
      engineAlive: alive,
      engineExit: engine.exit,
      accepted: accepted.size,
      arrived,
      lostSends: outbound.lost,
      lostArrivals: inbound.lost,
      before: tallies.before.toJSON(),
      after: tallies.after.toJSON(),
      ...(notUnavailable.length > 0 && { unexpectedDuringOutage: notUnavailable }),
      ...(internal.length > 0 && { internalErrors: internal }),
      ...(connection.length > 0 && { connectionErrors: connection }),
    },
  };
});
