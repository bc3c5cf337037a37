/**
 * IMAP server restart: the engine (a process of its own, defaults as shipped) watches a Dovecot
 * mailbox in IDLE; FAULTS_IMAP_MESSAGES (100) messages arrive and are routed; Dovecot is stopped
 * (SIGTERM to its master, as `systemctl stop` does) for FAULTS_IMAP_DOWN_MS (5 s) and started
 * again on the same port with the same mail, and as many messages arrive right after. Promises:
 * every message routed exactly once, the engine reconnects by itself (`recoveryMs`: from Dovecot
 * greeting again to every later message routed). `details` has how long the server status took
 * to show the stop and the return.
 */
import {
  EngineProcess,
  answerKey,
  engineEnv,
  privatePostgres,
  runFault,
  sleep,
  until,
  workDir,
  type Api,
} from './support/environment.js';
import {
  MAILBOX_PASSWORD,
  MAILBOX_USER,
  appendAll,
  mailboxClient,
  privateDovecot,
  routedCount,
  routedKeys,
} from './support/mailbox.js';
import { Tally, progress, reconcile } from './support/report.js';

const FAULT = 'imap-restart';
const MESSAGES = Number(process.env.FAULTS_IMAP_MESSAGES ?? 100);
const DOWN_MS = Number(process.env.FAULTS_IMAP_DOWN_MS ?? 5_000);

runFault(FAULT, { dovecot: true }, async () => {
  const postgres = await privatePostgres();
  const dovecot = await privateDovecot();
  const dir = await workDir(FAULT);
  const engine = await EngineProcess.start(engineEnv(postgres.url, dir), dir);
  const api: Api = engine.api();
  const tenant = await api.tenant('IMAP restart');
  const server = await api.server(tenant, 'Mailbox', {
    user: MAILBOX_USER,
    password: MAILBOX_PASSWORD,
    imapPort: dovecot.port,
    smtpPort: 2525,
  });
  await api.destination(tenant, server, MAILBOX_USER);
  const answers = new Tally();
  const inboundState = async (): Promise<string> => {
    const answer = await api.call('GET', `/tenants/${tenant}/servers/${server}/status`);
    answers.add(answerKey(answer));
    return String((answer.body.inbound as { state?: string } | undefined)?.state);
  };

  const before = Array.from({ length: MESSAGES }, (_, n) => `before-${n}`);
  await appendAll(await mailboxClient(dovecot), before);
  const routedBefore = await until(async () => (await routedCount(postgres.url)) >= MESSAGES, 60_000, 100);
  if (!routedBefore) progress(FAULT, 'the first messages were not all routed within 60 s');
  await until(async () => (await inboundState()) === 'idle', 30_000, 100);

  progress(FAULT, `Dovecot stopped for ${DOWN_MS} ms`);
  const stoppedAt = Date.now();
  await dovecot.stop();
  const stopTookMs = Date.now() - stoppedAt;
  const shown = await until(async () => (await inboundState()) !== 'idle', 60_000, 100);
  const statusShowsStopMs = shown ? Date.now() - stoppedAt : null;
  const stateWhileDown = await inboundState();
  await sleep(Math.max(0, DOWN_MS - (Date.now() - stoppedAt)));
  await dovecot.start();
  const backAt = Date.now();
  const after = Array.from({ length: MESSAGES }, (_, n) => `after-${n}`);
  await appendAll(await mailboxClient(dovecot), after);
  const all = [...before, ...after];
  const recovered = await until(async () => reconcile(after, await routedKeys(postgres.url)).lost === 0, 120_000, 100);
  const recoveryMs = recovered ? Date.now() - backAt : null;
  const idleAgain = await until(async () => (await inboundState()) === 'idle', 30_000, 100);
  const statusShowsReturnMs = idleAgain ? Date.now() - backAt : null;
  await sleep(1_000);
  const alive = engine.alive;
  await engine.stop();
  const { lost, duplicated, lostKeys } = reconcile(all, await routedKeys(postgres.url));
  return {
    fault: FAULT,
    lost,
    duplicated,
    errors: Object.fromEntries(Object.entries(answers.toJSON()).filter(([key]) => key !== '200')),
    recoveryMs,
    pass: alive && lost === 0 && duplicated === 0 && recoveryMs !== null,
    expect: 'every message routed exactly once across the restart; the engine reconnects by itself',
    details: {
      messages: all.length,
      downMs: DOWN_MS,
      dovecotStopTookMs: stopTookMs,
      statusShowsStopMs,
      stateWhileDown,
      statusShowsReturnMs,
      engineAlive: alive,
      ...(lostKeys.length > 0 && { lostKeys }),
    },
  };
});
