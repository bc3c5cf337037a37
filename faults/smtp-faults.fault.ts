/**
 * The SMTP fault table: one account per row, each sending to a relay of its own (the harness, in
 * this process, armed with the row's fault, or a relay that hangs), all at once, so that a row
 * that hangs must not hold up the others. Per-recipient outcome:
 *   - 421 at the greeting, 451 at MAIL FROM, 452 at RCPT TO, 451 after DATA, once each: retried,
 *     delivered once (a 4xx is retried after a minute, so the run lasts a little over one);
 *   - 550 at RCPT TO, 552 and 554 after DATA: dead-lettered with the server's reply;
 *   - two recipients, the server refusing one of them with 550: the other gets it, the refused one
 *     is recorded with the reply, the message is `partially-sent`;
 *   - two recipients, one refused with 452 once: the other gets it once, the refused one later;
 *   - a relay that hangs at the greeting, one that hangs after DATA (no reply to the final dot),
 *     once each: timed out, tried again, delivered once.
 * `lost`: recipients neither delivered nor recorded as refused; `duplicated`: copies beyond one.
 *
 * The engine runs in this process (src/main.ts `Engine`, as `mailroom start` builds it) with two
 * tunings the configuration does not offer: SMTP greeting and socket timeouts of 5 s and 10 s
 * (defaults 30 s and 120 s) and a relay probe every 2 s (default 30 s), so that the hanging rows
 * take seconds instead of minutes. Everything else is as shipped.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config/config.js';
import { startSmtpHarness, type SmtpHarness } from '../src/harness/smtp-harness.js';
import { Engine } from '../src/main.js';
import { createLogger } from '../src/shared/logger.js';
import { addCleanup } from '../test/support/cleanup.js';
import {
  Api,
  answerKey,
  engineEnv,
  privatePostgres,
  runFault,
  sleep,
  until,
  workDir,
  type Json,
} from './support/environment.js';
import { startHangingRelay, type HangPoint } from './support/hanging-relay.js';
import { Tally, progress } from './support/report.js';

const FAULT = 'smtp-faults';
/** [180000] longest wait for every row to settle, ms. */
const SETTLE_MS = 180_000;
/** A message of the healthy row sent while the hanging rows hang must arrive within this long, ms. */
const NOT_BLOCKED_MS = 3_000;

type Outcome = 'delivered' | 'refused';
interface Row {
  name: string;
  /** Recipients and what must become of each. */
  expect: Record<string, Outcome>;
  arm?: (smtp: SmtpHarness) => void;
  hang?: HangPoint;
}

const once = { times: 1 };
const ROWS: Row[] = [
  { name: 'healthy', expect: { 'a@example.net': 'delivered' } },
  {
    name: '421-greeting',
    expect: { 'a@example.net': 'delivered' },
    arm: (s) => s.faults.replyAt('connect', 421, undefined, once),
  },
  {
    name: '451-mail-from',
    expect: { 'a@example.net': 'delivered' },
    arm: (s) => s.faults.replyAt('mailFrom', 451, undefined, once),
  },
  {
    name: '452-rcpt',
    expect: { 'a@example.net': 'delivered' },
    arm: (s) => s.faults.rejectRecipient('*', 452, undefined, once),
  },
  {
    name: '451-after-data',
    expect: { 'a@example.net': 'delivered' },
    arm: (s) => s.faults.replyAt('data', 451, undefined, once),
  },
  { name: '550-rcpt', expect: { 'a@example.net': 'refused' }, arm: (s) => s.faults.rejectRecipient('*', 550) },
  { name: '552-after-data', expect: { 'a@example.net': 'refused' }, arm: (s) => s.faults.replyAt('data', 552) },
  { name: '554-after-data', expect: { 'a@example.net': 'refused' }, arm: (s) => s.faults.replyAt('data', 554) },
  {
    name: 'one-recipient-550',
    expect: { 'ok@example.net': 'delivered', 'gone@example.net': 'refused' },
    arm: (s) => s.faults.rejectRecipient('gone@example.net', 550, '550 5.1.1 No such user'),
  },
  {
    name: 'one-recipient-452',
    expect: { 'ok@example.net': 'delivered', 'full@example.net': 'delivered' },
    arm: (s) => s.faults.rejectRecipient('full@example.net', 452, '452 4.2.2 Mailbox full', once),
  },
  { name: 'hang-at-greeting', expect: { 'a@example.net': 'delivered' }, hang: 'greeting' },
  { name: 'hang-after-data', expect: { 'a@example.net': 'delivered' }, hang: 'afterData' },
];

interface Placed {
  row: Row;
  smtp: SmtpHarness;
  tenant: string;
  server: string;
  destination: string;
  id: string | null;
  sentAt: number;
  settledMs: number | null;
}

runFault(FAULT, {}, async () => {
  const postgres = await privatePostgres();
  const dir = await workDir(FAULT);
  const unhandled: unknown[] = [];
  process.on('unhandledRejection', (reason) => unhandled.push(reason));
  const config = loadConfig(
    {
      ...engineEnv(postgres.url, dir),
      MAILROOM_SECRET_KEY: randomBytes(32).toString('base64'),
      MAILROOM_HTTP_PORT: '0',
    },
    dir,
  );
  const engine = new Engine(config, createLogger({ level: 'silent' }), {
    outbound: { probeIntervalMs: 2_000, smtpTimeouts: { greetingMs: 5_000, socketMs: 10_000 } },
  });
  await engine.start();
  addCleanup(() => engine.stop(), 'first');
  const api = new Api(`http://127.0.0.1:${engine.httpAddress.port}`);

  const placed: Placed[] = [];
  for (const row of ROWS) {
    const smtp = await startSmtpHarness({});
    addCleanup(() => smtp.close());
    row.arm?.(smtp);
    const relayPort = row.hang ? (await startHangingRelay(row.hang, smtp.port)).port : smtp.port;
    const address = `${row.name}@faults.example`;
    const tenant = await api.tenant(`SMTP ${row.name}`); // a tenant has at most 5 servers
    const server = await api.server(tenant, row.name, { user: address, smtpPort: relayPort });
    const destination = await api.destination(tenant, server, address);
    placed.push({ row, smtp, tenant, server, destination, id: null, sentAt: 0, settledMs: null });
  }

  const answers = new Tally();
  const send = async (p: Placed, subject: string): Promise<string | null> => {
    const answer = await api.call('POST', `/tenants/${p.tenant}/destinations/${p.destination}/outbound`, {
      to: Object.keys(p.row.expect),
      subject,
      text: `row ${p.row.name}`,
    });
    answers.add(answerKey(answer));
    return answer.status === 202 ? (answer.body.id as string) : null;
  };
  progress(FAULT, `${ROWS.length} rows, each to a relay of its own`);
  await Promise.all(
    placed.map(async (p) => {
      p.sentAt = Date.now();
      p.id = await send(p, `fault ${p.row.name}`);
    }),
  );

  // While the hanging relays hold their connections, the healthy account still sends at once.
  const healthy = placed[0] as Placed;
  await sleep(1_000);
  const probeAt = Date.now();
  await send(healthy, 'while others hang');
  const notBlocked = await until(() => healthy.smtp.messages.length >= 2, NOT_BLOCKED_MS, 20);
  const healthyLatencyMs = notBlocked ? Date.now() - probeAt : null;

  const deadLetters = async (p: Placed): Promise<Json[]> =>
    ((await api.call('GET', `/tenants/${p.tenant}/servers/${p.server}/dead-letters`)).body.deadLetters as Json[]) ?? [];
  const view = async (p: Placed): Promise<Json> =>
    (await api.call('GET', `/tenants/${p.tenant}/destinations/${p.destination}/outbound/${p.id}`)).body;
  const copies = (p: Placed, address: string): number =>
    p.smtp.messages.filter((m) => m.envelope.to.includes(address) && m.raw.toString().includes(`fault ${p.row.name}`))
      .length;
  /** Whether a refusal of `address` is on record with the server's reply (its code in it). */
  const refusalRecorded = async (p: Placed, address: string, code: number): Promise<boolean> => {
    const message = await view(p);
    const recipients = (message.refusedRecipients as Array<{ address: string; responseCode: number | null }>) ?? [];
    if (recipients.some((r) => r.address === address && r.responseCode === code)) return true;
    return (await deadLetters(p)).some(
      (d) => d.id === p.id && d.responseCode === code && String(d.reply ?? '').includes(String(code)),
    );
  };
  const expectedCode = (p: Placed): number => Number(/^(\d{3})/.exec(p.row.name)?.[1] ?? 550);
  const settled = async (p: Placed): Promise<boolean> => {
    for (const [address, outcome] of Object.entries(p.row.expect)) {
      if (outcome === 'delivered' && copies(p, address) === 0) return false;
      if (outcome === 'refused' && !(await refusalRecorded(p, address, expectedCode(p)))) return false;
    }
    return true;
  };
  await until(
    async () => {
      for (const p of placed) if (p.settledMs === null && (await settled(p))) p.settledMs = Date.now() - p.sentAt;
      return placed.every((p) => p.settledMs !== null);
    },
    SETTLE_MS,
    500,
  );
  await sleep(2_000); // a second copy would show by now

  let lost = 0;
  let duplicated = 0;
  const rows: Record<string, unknown> = {};
  for (const p of placed) {
    const outcome: Record<string, unknown> = {};
    for (const [address, expected] of Object.entries(p.row.expect)) {
      const n = copies(p, address);
      const recorded = expected === 'refused' && (await refusalRecorded(p, address, expectedCode(p)));
      if (expected === 'delivered' && n === 0) lost += 1;
      if (expected === 'refused' && (!recorded || n > 0)) lost += 1;
      duplicated += Math.max(0, n - 1);
      outcome[address] =
        expected === 'delivered'
          ? `${n} ${n === 1 ? 'copy' : 'copies'}`
          : recorded && n === 0
            ? 'refused, on record'
            : `not on record (${n} copies)`;
    }
    const message = p.id ? await view(p) : {};
    rows[p.row.name] = {
      status: message.status,
      attempts: message.attempts,
      settledMs: p.settledMs,
      ...outcome,
    };
  }
  const partial = rows['one-recipient-550'] as { status?: string };
  const pass =
    lost === 0 &&
    duplicated === 0 &&
    unhandled.length === 0 &&
    healthyLatencyMs !== null &&
    partial.status === 'partially-sent' &&
    answers.keys().every((key) => key === '202');
  return {
    fault: FAULT,
    lost,
    duplicated,
    errors: Object.fromEntries(Object.entries(answers.toJSON()).filter(([key]) => key !== '202')),
    recoveryMs: null,
    pass,
    expect:
      '4xx and hangs retried and delivered once; 5xx dead-lettered or recorded per recipient with the reply; partly refused message partially-sent; a hanging relay holds up no other account',
    details: {
      rows,
      healthyLatencyWhileOthersHangMs: healthyLatencyMs,
      unhandledRejections: unhandled.length,
      timeouts: { greetingMs: 5_000, socketMs: 10_000, probeIntervalMs: 2_000 },
    },
  };
});
