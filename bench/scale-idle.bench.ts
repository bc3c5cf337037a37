/**
 * Issue 7's scale benchmark: 1,000 accounts of the fake IMAP harness in IDLE, served by one engine
 * process on PostgreSQL. Measured for Mailroom and, in the same run, for a baseline process of
 * bare imapflow clients (one per account, IDLE on INBOX, the same 32-at-a-time connect limit):
 *   - time from process start to every account idling (Mailroom: its /metrics say `idle`);
 *   - resident memory once all are idling;
 *   - CPU use at rest over one minute (share of one core), after 10 s of settling;
 *   - arrival-to-routed latency for messages appended to random accounts, one at a time
 *     (Mailroom: append → delivery row committed, by the database's clock; baseline: append →
 *     the client's `exists` notice).
 * Targets (issue 7, 2-core machine): all connected within 60 s, RSS ≤ 600 MB, CPU at rest ≤ 5 %,
 * latency p99 ≤ 2 s. The fake IMAP server runs in this process, not in the measured ones.
 *
 *   BENCH_SCALE_ACCOUNTS [1000], BENCH_SCALE_REST_MS [60000], BENCH_SCALE_MESSAGES [100]
 *   MAILROOM_ENGINE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the engine process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createAccounts } from '../src/accounts/index.js';
import { startFakeImap } from '../src/harness/fake-imap/index.js';
import { SecretSealer } from '../src/shared/sealed-secrets.js';
import { Store } from '../src/store/store.js';
import { addCleanup } from '../test/support/cleanup.js';
import { createTestDatabase, quietLogger } from '../test/support/database.js';
import { rawMail } from '../test/support/mail.js';
import { freePort, startEngineProcess } from '../test/support/processes.js';
import { PASSWORD, runBench, within } from './support/environment.js';
import { compare, emit, percentile, progress } from './support/report.js';

/** The engine process runs the build when the runner measures the build (bench/support/shipped-code.ts). */
const ENGINE_BUILT = process.env.BENCH_ENGINE_CODE === 'dist';

const BENCH = 'scale-idle';
const ACCOUNTS = Number(process.env.BENCH_SCALE_ACCOUNTS ?? 1_000);
const REST_MS = Number(process.env.BENCH_SCALE_REST_MS ?? 60_000);
const MESSAGES = Number(process.env.BENCH_SCALE_MESSAGES ?? 100);
const CONNECT_TIMEOUT_MS = 180_000;
/** Quiet time after all accounts idle before CPU at rest is measured, ms. */
const SETTLE_MS = 10_000;
const TOKEN = 'scale-bench-token';
const CLOCK_TICKS = 100; // USER_HZ on Linux
const BASELINE_SCRIPT = fileURLToPath(new URL('./support/idle-clients.ts', import.meta.url));

/** Resident set size of a process, MB. */
async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** CPU seconds (user + system) a process used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Share of one core a process uses while nothing happens, over `ms`. */
async function cpuAtRest(pid: number, ms: number): Promise<number> {
  const before = await cpuSeconds(pid);
  const started = performance.now();
  await sleep(ms);
  const elapsed = (performance.now() - started) / 1000;
  return ((await cpuSeconds(pid)) - before) / elapsed;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Appends to random accounts one at a time; `arrived` resolves with the arrival time (epoch ms). */
async function latencies(
  users: readonly string[],
  append: (user: string, subject: string) => void,
  arrived: (user: string, subject: string) => Promise<number>,
): Promise<number[]> {
  const samples: number[] = [];
  for (let n = 0; n < MESSAGES; n++) {
    const user = users[Math.floor(Math.random() * users.length)] as string;
    const subject = `scale ${n} ${randomBytes(4).toString('hex')}`;
    const sentAt = Date.now();
    append(user, subject);
    samples.push((await within(arrived(user, subject), 30_000, `message ${n} for ${user}`)) - sentAt);
    await sleep(50 + Math.random() * 150);
  }
  return samples;
}

runBench(BENCH, async () => {
  const users = Array.from({ length: ACCOUNTS }, (_, i) => `acct${i}@scale.example`);
  const imap = await startFakeImap({ users: users.map((user) => ({ user, password: PASSWORD })) });
  addCleanup(() => imap.close());
  const append = (user: string, subject: string): void => {
    imap.append(user, 'INBOX', rawMail({ to: user, subject }));
  };

  // Baseline: bare imapflow clients in a process of their own.
  progress(BENCH, `baseline: ${ACCOUNTS} bare imapflow clients`);
  const baselineStart = performance.now();
  const baseline = spawn(process.execPath, ['--import', 'tsx', BASELINE_SCRIPT], {
    env: { ...process.env, BENCH_IMAP_PORT: String(imap.port), BENCH_USERS: users.join(','), BENCH_PASSWORD: PASSWORD },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  addCleanup(() => stopChild(baseline));
  const notices = new Map<string, (at: number) => void>();
  let baselineConnected: (() => void) | undefined;
  const connected = new Promise<void>((resolve) => (baselineConnected = resolve));
  createInterface({ input: baseline.stdout }).on('line', (line) => {
    const event = JSON.parse(line) as { connected?: number; exists?: string; at?: number };
    if (event.connected !== undefined) baselineConnected?.();
    if (event.exists !== undefined) notices.get(event.exists)?.(event.at as number);
  });
  await within(connected, CONNECT_TIMEOUT_MS, 'the baseline clients connecting');
  const baselineConnectS = (performance.now() - baselineStart) / 1000;
  const baselineRss = await rssMb(baseline.pid as number);
  progress(BENCH, `baseline: all idling after ${baselineConnectS.toFixed(1)} s; CPU at rest for ${REST_MS} ms`);
  await sleep(SETTLE_MS);
  const baselineCpu = await cpuAtRest(baseline.pid as number, REST_MS);
  const baselineLatency = await latencies(users, append, (user) => new Promise((r) => notices.set(user, r)));
  await stopChild(baseline);

  // Mailroom: one engine process, 1,000 servers in 200 tenants, one destination each.
  const databaseUrl = await createTestDatabase();
  const key = randomBytes(32);
  const store = await Store.open({ databaseUrl }, quietLogger);
  addCleanup(() => store.close(), 'first');
  const accounts = createAccounts(store, new SecretSealer(key), quietLogger);
  progress(BENCH, `creating ${ACCOUNTS} accounts`);
  for (let t = 0; t * 5 < ACCOUNTS; t++) {
    const tenant = await accounts.tenants.create({ name: `Scale tenant ${t}` });
    for (let i = t * 5; i < Math.min(ACCOUNTS, t * 5 + 5); i++) {
      const user = users[i] as string;
      const server = await accounts.servers.create(tenant.id, {
        name: `Box ${i}`,
        imap: {
          host: '127.0.0.1',
          port: imap.port,
          secure: false,
          user,
          auth: { method: 'password', password: PASSWORD },
        },
        smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
      });
      await accounts.destinations.create(tenant.id, { name: `Queue ${i}`, address: user, serverId: server.id });
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-scale-'));
  addCleanup(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  progress(BENCH, 'starting the engine');
  const engineStart = performance.now();
  const { child: engine } = startEngineProcess(
    {
      MAILROOM_DATABASE_URL: databaseUrl,
      MAILROOM_SECRET_KEY: key.toString('base64'),
      MAILROOM_API_TOKEN: TOKEN,
      MAILROOM_HTTP_PORT: String(port),
      MAILROOM_LOG_LEVEL: 'warn',
    },
    dir,
    { built: ENGINE_BUILT },
  );
  addCleanup(() => stopChild(engine));
  const idleCount = async (): Promise<number> => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      if (res.status !== 200) return 0;
      return (await res.text())
        .split('\n')
        .filter((l) => l.startsWith('mailroom_imap_session_state{') && l.includes('state="idle"')).length;
    } catch {
      return 0;
    }
  };
  const deadline = engineStart + CONNECT_TIMEOUT_MS;
  let idle = 0;
  while ((idle = await idleCount()) < ACCOUNTS) {
    if (engine.exitCode !== null) throw new Error(`the engine exited with ${engine.exitCode}`);
    if (performance.now() > deadline) throw new Error(`only ${idle} of ${ACCOUNTS} accounts idling`);
    await sleep(250);
  }
  const engineConnectS = (performance.now() - engineStart) / 1000;
  const engineRss = await rssMb(engine.pid as number);
  progress(BENCH, `mailroom: all idling after ${engineConnectS.toFixed(1)} s; CPU at rest for ${REST_MS} ms`);
  await sleep(SETTLE_MS); // the last first syncs' post-processing and start-up work finish
  const engineCpu = await cpuAtRest(engine.pid as number, REST_MS);
  const engineLatency = await latencies(users, append, async (_user, subject) => {
    for (;;) {
      const rows = await store.query<{ at: Date }>(
        `SELECT d.created_at AS at FROM inbound_deliveries d JOIN inbound_messages m ON m.id = d.message_id
          WHERE m.subject = $1`,
        [subject],
      );
      if (rows[0]) return new Date(rows[0].at).getTime();
      await sleep(10);
    }
  });

  const details = {
    accounts: ACCOUNTS,
    restMs: REST_MS,
    messages: MESSAGES,
    engineRuntime: ENGINE_BUILT ? 'node dist/cli/bin.js' : 'node --import tsx src/cli/bin.ts',
  };
  emit(compare(BENCH, 'all_connected', 's', engineConnectS, baselineConnectS, { valueAtMost: 60 }, details));
  emit(compare(BENCH, 'rss', 'MB', engineRss, baselineRss, { valueAtMost: 600 }, details));
  emit(compare(BENCH, 'cpu_at_rest', '% of one core', engineCpu * 100, baselineCpu * 100, { valueAtMost: 5 }, details));
  emit(
    compare(
      BENCH,
      'arrival_to_routed_p50',
      'ms',
      percentile(engineLatency, 50),
      percentile(baselineLatency, 50),
      null,
      details,
    ),
  );
  emit(
    compare(
      BENCH,
      'arrival_to_routed_p99',
      'ms',
      percentile(engineLatency, 99),
      percentile(baselineLatency, 99),
      { valueAtMost: 2_000 },
      details,
    ),
  );
});
