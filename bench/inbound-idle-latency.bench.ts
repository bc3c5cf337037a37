/**
 * Arrival-to-routed latency with IDLE: 200 messages appended one by one (append, wait, pause, next).
 * Baseline: a bare imapflow client in IDLE on a mailbox of its own; append -> 'exists' event.
 * Mailroom: createInbound with default options watching another mailbox of the same Dovecot;
 * append -> 'routed' event (stored, delivered and checkpointed). Timed from just before APPEND.
 * Each append follows a quiet pause, so that it reaches a connection that is back in IDLE: without
 * it, the next message lands while Mailroom still post-processes the previous one (STORE \Seen),
 * Dovecot reports it in that command's answer, and the IDLE path is never measured. The pauses are
 * pseudo-random (the same sequence for both): Dovecot reports changes to an idling client 500 ms
 * after the first file-system event it sees, so a fixed pause would pick one phase of that timer.
 */
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ImapFlow } from 'imapflow';
import { rawMail } from '../test/support/mail.js';
import { seededRandom } from '../test/support/seeded-random.js';
import { imapClient, prepareMailroom, runBench, startBenchDovecot, within } from './support/environment.js';
import { compare, emit, percentile, progress } from './support/report.js';

const BENCH = 'inbound-idle-latency';
const MESSAGES = Number(process.env.BENCH_IDLE_MESSAGES ?? 200);
const BASELINE_USER = 'idle-baseline@bench.example';
const MAILROOM_USER = 'idle-mailroom@bench.example';
const ADDRESS = 'support@bench.example';
/** Longest wait for one message to be noticed or routed, ms. */
const PER_MESSAGE_TIMEOUT_MS = 30_000;
/** Longest wait for Mailroom's watcher to reach IDLE after start(), ms. */
const START_TIMEOUT_MS = 30_000;
/** Quiet time before each append (not timed): uniform in [0, PAUSE_MAX_MS), ms. */
const PAUSE_MAX_MS = 500;
const PAUSE_SEED = 0x6d61696c;

runBench(BENCH, async () => {
  const dovecot = await startBenchDovecot([BASELINE_USER, MAILROOM_USER]);
  const message = (n: number): string => rawMail({ to: ADDRESS, subject: `Latency ${n}` });

  // Baseline: one client idles, another appends to the same mailbox.
  const watcher = await imapClient(dovecot, BASELINE_USER, { disableAutoIdle: true });
  await watcher.mailboxOpen('INBOX');
  keepIdling(watcher);
  const baselineAppender = await imapClient(dovecot, BASELINE_USER);
  const baseline = await measure(MESSAGES, async (n) => {
    const seen = once(watcher, 'exists');
    await baselineAppender.append('INBOX', message(n));
    await seen;
  });
  progress(BENCH, `baseline: p50 ${percentile(baseline, 50).toFixed(1)} ms`);

  const mailroom = await prepareMailroom(dovecot, MAILROOM_USER, ADDRESS);
  await mailroom.inbound.start();
  await within(idleReached(), START_TIMEOUT_MS, 'the watcher reaching IDLE');
  const appender = await imapClient(dovecot, MAILROOM_USER);
  const events = mailroom.inbound.service.events;
  const measured = await measure(MESSAGES, async (n) => {
    const routed = once(events, 'routed');
    await appender.append('INBOX', message(n));
    await routed;
  });
  progress(BENCH, `mailroom: p50 ${percentile(measured, 50).toFixed(1)} ms`);

  const details = {
    messages: MESSAGES,
    minMs: Math.round(Math.min(...measured)),
    maxMs: Math.round(Math.max(...measured)),
    baselineMinMs: Math.round(Math.min(...baseline)),
    baselineMaxMs: Math.round(Math.max(...baseline)),
  };
  for (const p of [50, 99]) {
    const target = p === 50 ? { deltaAtMost: 250 } : null;
    emit(compare(BENCH, `p${p}`, 'ms', percentile(measured, p), percentile(baseline, p), target, details));
  }

  async function idleReached(): Promise<void> {
    while (mailroom.inbound.status(mailroom.serverId).state !== 'idle') {
      await sleep(20);
    }
  }
});

/** Runs `step` for 0..count-1 one after another; the latency of each, ms. */
async function measure(count: number, step: (n: number) => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  const random = seededRandom(PAUSE_SEED);
  for (let n = 0; n < count; n += 1) {
    await sleep(Math.floor(random() * PAUSE_MAX_MS));
    const started = performance.now();
    await within(step(n), PER_MESSAGE_TIMEOUT_MS, `message ${n}`);
    samples.push(performance.now() - started);
  }
  return samples;
}

/** Keeps the client in IDLE (imapflow ends IDLE on its own after a while; start it again). */
function keepIdling(client: ImapFlow): void {
  const again = (): void => {
    if (client.usable) void client.idle().then(again, () => undefined);
  };
  again();
}
