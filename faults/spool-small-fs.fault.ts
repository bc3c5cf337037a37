/**
 * Spool on a small file system: the engine's spool is a tmpfs of FAULTS_SPOOL_MB (2) MiB mounted
 * for the run (`mount -t tmpfs -o size=…`, as root), the relay is down, and messages of about
 * 30 kB are posted (4 at a time) until the spool is full and well past it. Promises: a full spool
 * answers 507 SPOOL_FULL (never 500, never a dropped connection) and the engine lives on; once the
 * relay is back, every message answered 202 is delivered once, and sends are accepted again when
 * the spool has drained (`recoveryMs`: from the relay's return to the first 202 after the spool
 * was full; the relay is probed every 30 s, as shipped).
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
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
import { Tally, emit, progress, reconcile } from './support/report.js';

const run = promisify(execFile);
const FAULT = 'spool-small-fs';
const SPOOL_MB = Number(process.env.FAULTS_SPOOL_MB ?? 2);
/** Posts while the relay is down (about three times what the spool holds). */
const POSTS = Math.ceil((SPOOL_MB * 1024 * 1024 * 3) / 30_000);
const CONCURRENCY = 4;
/** Posts after the spool drained: all must be accepted. */
const AFTER = 20;
const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(660); // about 30 kB

runFault(FAULT, {}, async () => {
  const dir = await workDir(FAULT);
  const mountPoint = join(dir, 'small');
  await mkdir(mountPoint);
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${SPOOL_MB}m,mode=0755`, 'tmpfs', mountPoint]);
  } catch (err) {
    emit({ fault: FAULT, skipped: `cannot mount a ${SPOOL_MB} MiB tmpfs here: ${(err as Error).message.trim()}` });
    process.exit(0);
  }
  addCleanup(async () => void (await run('umount', ['-l', mountPoint])));

  const postgres = await privatePostgres();
  const smtp = await startSmtpHarness({});
  addCleanup(() => smtp.close());
  await smtp.stop();
  const engine = await EngineProcess.start(
    engineEnv(postgres.url, dir, { MAILROOM_SPOOL_DIR: join(mountPoint, 'spool') }),
    dir,
  );
  const api = engine.api();
  const tenant = await api.tenant('Small spool');
  const server = await api.server(tenant, 'Relay', { user: 'out@faults.example', smtpPort: smtp.port });
  const destination = await api.destination(tenant, server, 'out@faults.example');
  const path = `/tenants/${tenant}/destinations/${destination}/outbound`;

  const accepted = new Set<string>();
  const whileFull = new Tally();
  const send = async (subject: string, tally: Tally): Promise<number> => {
    const answer = await api.call('POST', path, { to: ['customer@example.net'], subject, text: TEXT });
    tally.add(answerKey(answer));
    if (answer.status === 202) accepted.add(answer.body.id as string);
    return answer.status;
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let n = next++; n < POSTS; n = next++) await send(`full ${n}`, whileFull);
    }),
  );
  const acceptedWhileDown = accepted.size;
  progress(FAULT, `relay down: ${JSON.stringify(whileFull.toJSON())}`);

  const backAt = Date.now();
  await smtp.start();
  const afterTally = new Tally();
  let recoveryMs: number | null = null;
  for (let n = 0; n < AFTER;) {
    if (Date.now() - backAt > 120_000) break;
    if ((await send(`after ${n}`, afterTally)) === 202) {
      recoveryMs ??= Date.now() - backAt;
      n += 1;
    } else await sleep(500);
  }
  const sentIds = (): string[] => smtp.messages.map((m) => outboundIdOf(m.raw) ?? '?');
  await until(() => reconcile(accepted, sentIds()).lost === 0, 120_000, 200);
  await sleep(1_000);
  const alive = engine.alive;
  await engine.stop();
  const { lost, duplicated, lostKeys } = reconcile(accepted, sentIds());

  const keys = [...whileFull.keys(), ...afterTally.keys()];
  const unexpected = keys.filter((key) => key !== '202' && key !== '507 SPOOL_FULL');
  const pass =
    alive &&
    lost === 0 &&
    duplicated === 0 &&
    whileFull.get('507 SPOOL_FULL') > 0 &&
    unexpected.length === 0 &&
    afterTally.get('202') === AFTER;
  return {
    fault: FAULT,
    lost,
    duplicated,
    errors: Object.fromEntries(Object.entries(whileFull.toJSON()).filter(([key]) => key !== '202')),
    recoveryMs,
    pass,
    expect: 'a full spool answers 507 SPOOL_FULL only; every 202 delivered once; sends accepted again after the drain',
    details: {
      spoolMiB: SPOOL_MB,
      filesystem: 'tmpfs',
      posted: POSTS,
      acceptedWhileRelayDown: acceptedWhileDown,
      afterRelayBack: afterTally.toJSON(),
      engineAlive: alive,
      ...(unexpected.length > 0 && { unexpected }),
      ...(lostKeys.length > 0 && { lostKeys }),
    },
  };
});
