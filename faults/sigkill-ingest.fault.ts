/**
 * SIGKILL during ingest: FAULTS_INGEST_MESSAGES (500) messages wait in a Dovecot mailbox and
 * more arrive all along; the engine (a process of its own, batches of 10 so that kills land
 * between and inside commits) is killed with SIGKILL FAULTS_KILLS (5) times at random moments
 * once it has routed something, and started again each time. Promise: every message is routed
 * exactly once (the message, its delivery and the mailbox checkpoint commit together).
 * `recoveryMs`: from the last start to everything routed; `details.restartToFirstRouteMs`: how
 * long each restarted process took to route again (its own lease of the killed process).
 */
import { addCleanup } from '../test/support/cleanup.js';
import { EngineProcess, engineEnv, privatePostgres, runFault, sleep, until, workDir } from './support/environment.js';
import {
  MAILBOX_PASSWORD,
  MAILBOX_USER,
  appendAll,
  appendOne,
  mailboxClient,
  privateDovecot,
  routedCount,
  routedKeys,
} from './support/mailbox.js';
import { progress, reconcile } from './support/report.js';

const FAULT = 'sigkill-ingest';
const MESSAGES = Number(process.env.FAULTS_INGEST_MESSAGES ?? 500);
const KILLS = Number(process.env.FAULTS_KILLS ?? 5);
/** [120000] longest wait for the last process to route everything, ms. */
const DRAIN_MS = 120_000;

runFault(FAULT, { dovecot: true }, async () => {
  const postgres = await privatePostgres();
  const dovecot = await privateDovecot();
  const dir = await workDir(FAULT);
  const client = await mailboxClient(dovecot);
  const keys = Array.from({ length: MESSAGES }, (_, n) => `ingest-${n}`);
  progress(FAULT, `appending ${MESSAGES} messages`);
  await appendAll(client, keys);

  const env = engineEnv(postgres.url, dir, {
    MAILROOM_IMAP_BATCH_MESSAGES: '10',
    MAILROOM_RECONCILE_INTERVAL_MS: '500',
  });
  let engine = await EngineProcess.start(env, dir);
  const api = engine.api();
  const tenant = await api.tenant('Ingest');
  const server = await api.server(tenant, 'Mailbox', {
    user: MAILBOX_USER,
    password: MAILBOX_PASSWORD,
    imapPort: dovecot.port,
    smtpPort: 2525,
  });
  await api.destination(tenant, server, MAILBOX_USER);

  // Customers keep writing in while the engine is killed and started again.
  let arriving = true;
  let arrived = 0;
  const arrivals = (async () => {
    while (arriving) {
      await appendOne(client, `live-${arrived}`);
      arrived += 1;
      await sleep(100);
    }
  })();
  addCleanup(async () => {
    arriving = false;
    await arrivals.catch(() => undefined);
  }, 'first');

  const routedAtKill: number[] = [];
  const restartToFirstRouteMs: Array<number | null> = [];
  const startMs: number[] = [];
  for (let kill = 0; kill < KILLS; kill += 1) {
    const before = await routedCount(postgres.url);
    const startedAt = Date.now();
    // Once this process has routed something (its first batches), kill it within the next 300 ms.
    const routing = await until(async () => (await routedCount(postgres.url)) > before, 30_000, 20);
    restartToFirstRouteMs.push(routing ? Date.now() - startedAt : null);
    await sleep(Math.random() * 300);
    await engine.kill();
    routedAtKill.push(await routedCount(postgres.url));
    const restartAt = Date.now();
    engine = await EngineProcess.start(env, dir);
    startMs.push(Date.now() - restartAt);
    progress(FAULT, `kill ${kill + 1}: ${routedAtKill.at(-1)} routed; started again in ${startMs.at(-1)} ms`);
  }
  arriving = false;
  await arrivals;
  const total = MESSAGES + arrived;
  const lastStart = Date.now();
  const drained = await until(async () => (await routedCount(postgres.url)) >= total, DRAIN_MS, 100);
  const recoveryMs = drained ? Date.now() - lastStart : null;
  await sleep(1_000); // anything routed twice would show by now
  await engine.stop();

  const promised = [...keys, ...Array.from({ length: arrived }, (_, n) => `live-${n}`)];
  const { lost, duplicated, lostKeys } = reconcile(promised, await routedKeys(postgres.url));
  const killsMidway = routedAtKill.filter((n) => n > 0 && n < total).length;
  return {
    fault: FAULT,
    lost,
    duplicated,
    errors: {},
    recoveryMs,
    pass: lost === 0 && duplicated === 0 && killsMidway > 0,
    expect: 'every message routed exactly once across the kills; at least one kill lands mid-ingest',
    details: {
      messages: total,
      waiting: MESSAGES,
      arrivedDuringKills: arrived,
      kills: KILLS,
      killsMidway,
      routedAtKill,
      startMs,
      restartToFirstRouteMs,
      ...(lostKeys.length > 0 && { lostKeys }),
    },
  };
});
