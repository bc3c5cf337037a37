/**
 * SIGKILL during sending: FAULTS_SEND_MESSAGES (400) messages posted to the send API, 8 at a time,
 * to an SMTP sink (the harness, in this process); the engine is killed with SIGKILL FAULTS_KILLS
 * (5) times while it accepts and delivers, and started again each time. Promise: every message
 * answered 202 reaches the sink (0 lost); a message whose 250 the kill cut off may go again, so
 * at most one duplicate per kill. Requests cut by a kill get no answer (`errors`); what became of
 * them (sent or not) is in `details`.
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
  type Api,
} from './support/environment.js';
import { Tally, progress, reconcile } from './support/report.js';

const FAULT = 'sigkill-send';
const MESSAGES = Number(process.env.FAULTS_SEND_MESSAGES ?? 400);
const KILLS = Number(process.env.FAULTS_KILLS ?? 5);
const CONCURRENCY = 8;
/** [60000] longest wait for the last process to deliver everything, ms. */
const DRAIN_MS = 60_000;

runFault(FAULT, {}, async () => {
  const postgres = await privatePostgres();
  const dir = await workDir(FAULT);
  const smtp = await startSmtpHarness({});
  addCleanup(() => smtp.close());
  const env = engineEnv(postgres.url, dir);
  let engine = await EngineProcess.start(env, dir);
  let api: Api = engine.api();
  const tenant = await api.tenant('Sending');
  const server = await api.server(tenant, 'Relay', { user: 'out@faults.example', smtpPort: smtp.port });
  const destination = await api.destination(tenant, server, 'out@faults.example');
  const path = `/tenants/${tenant}/destinations/${destination}/outbound`;

  const accepted = new Set<string>();
  const answers = new Tally();
  const unanswered: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let n = next++; n < MESSAGES; n = next++) {
      const subject = `send ${n}`;
      const answer = await api.call('POST', path, { to: ['customer@example.net'], subject, text: `n=${n}` });
      answers.add(answerKey(answer));
      if (answer.status === 202) accepted.add(answer.body.id as string);
      else if (answer.status === 0) unanswered.push(subject);
      else progress(FAULT, `${subject}: ${answer.status} ${JSON.stringify(answer.body)}`);
      // While the engine is being started again, wait for it rather than spending the messages.
      if (answer.status === 0) await until(() => engine.alive, 60_000, 50);
    }
  };
  const sending = Promise.all(Array.from({ length: CONCURRENCY }, worker));

  const delivered = (): number => smtp.messages.length;
  const deliveredAtKill: number[] = [];
  for (let kill = 0; kill < KILLS; kill += 1) {
    // Kill once this process has delivered something of its own, at a random moment after.
    const before = delivered();
    await until(() => delivered() > before || next >= MESSAGES, 20_000, 20);
    await sleep(200 + Math.random() * 800);
    await engine.kill();
    deliveredAtKill.push(delivered());
    progress(FAULT, `kill ${kill + 1}: ${accepted.size} accepted, ${deliveredAtKill.at(-1)} delivered`);
    engine = await EngineProcess.start(env, dir);
    api = engine.api();
  }
  await sending;
  const lastStart = Date.now();
  const sentIds = (): string[] => smtp.messages.map((m) => outboundIdOf(m.raw) ?? '?');
  const drained = await until(() => reconcile(accepted, sentIds()).lost === 0, DRAIN_MS, 100);
  const recoveryMs = drained ? Date.now() - lastStart : null;
  await sleep(1_000);
  await engine.stop();

  const { lost, duplicated, lostKeys } = reconcile(accepted, sentIds());
  const sentSubjects = new Set(smtp.messages.map((m) => /^Subject: (.*)$/m.exec(m.raw.toString())?.[1]?.trim()));
  return {
    fault: FAULT,
    lost,
    duplicated,
    errors: Object.fromEntries(Object.entries(answers.toJSON()).filter(([key]) => key !== '202')),
    recoveryMs,
    pass: lost === 0 && duplicated <= KILLS,
    expect: 'every 202 delivered; at most one duplicate per kill',
    details: {
      posted: MESSAGES,
      accepted: accepted.size,
      kills: KILLS,
      deliveredAtKill,
      cutOffByKill: unanswered.length,
      cutOffButSent: unanswered.filter((s) => sentSubjects.has(s)).length,
      ...(lostKeys.length > 0 && { lostKeys }),
    },
  };
});
