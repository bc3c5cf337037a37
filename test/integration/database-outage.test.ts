import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { Engine } from '../../src/main.js';
import { quietLogger } from '../support/database.js';
import { loopbackImap } from '../support/fixtures.js';
import { eventually } from '../support/mail.js';
import { privatePostgresMissing, startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';
import { skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

type Phase = 'before' | 'stopping' | 'down' | 'starting' | 'after';

interface Outcome {
  phase: Phase;
  route: 'send' | 'feed' | 'status';
  status: number;
  code: string | null;
}

/**
 * PostgreSQL stops (a fast shutdown of a cluster of the test's own: sessions cut with 57P01, new
 * connections refused) while sends are accepted and the read API is used, then starts again. The
 * engine must live through it (no unhandled rejection), answer 503 DATABASE_UNAVAILABLE (never
 * 500) while it lasts, accept again by itself once the database is back, and lose no accepted mail.
 */
describe('database outage under traffic (whole engine, private PostgreSQL cluster)', function () {
  this.timeout(120_000);
  let postgres: PrivatePostgres;
  let imap: FakeImapServer;
  let smtp: SmtpHarness;
  let engine: Engine | undefined;
  let dir: string;
  const token = 'outage-token';
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

  before(async function () {
    skipWithout(this, privatePostgresMissing());
    dir = await mkdtemp(join(tmpdir(), 'mailroom-outage-'));
    postgres = await startPrivatePostgres();
    process.on('unhandledRejection', onUnhandled);
  });

  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await engine?.stop();
    await smtp?.close();
    await imap?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('survives, answers 503 DATABASE_UNAVAILABLE while the database is down, recovers, loses nothing', async () => {
    const user = { user: 'support@example.com', password: 'support' };
    imap = await startFakeImap({ users: [user] });
    smtp = await startSmtpHarness({ users: [user] });
    const config = loadConfig(
      {
        MAILROOM_DATABASE_URL: postgres.url,
        MAILROOM_SECRET_KEY: randomBytes(32).toString('base64'),
        MAILROOM_API_TOKEN: token,
        MAILROOM_HTTP_PORT: '0',
        MAILROOM_SPOOL_DIR: join(dir, 'spool'),
        MAILROOM_TEMPLATES_DIR: join(dir, 'templates'),
        MAILROOM_SHUTDOWN_TIMEOUT_MS: '2000',
        // Leases lapse during the outage (the watchers stop, and start again after it).
        MAILROOM_LEASE_TTL_MS: '2000',
        MAILROOM_RECONCILE_INTERVAL_MS: '200',
      },
      dir,
    );
    // Heartbeats take their place in the send log (the database) all through the outage.
    engine = new Engine(config, quietLogger, { outbound: { heartbeatIntervalMs: 300 } });
    await engine.start();
    const base = `http://127.0.0.1:${engine.httpAddress.port}/api/v1`;
    const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Obj }> => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as Obj };
    };
    const tenant = (await call('POST', '/tenants', { name: 'Outage' })).body.id as string;
    const server = (
      await call('POST', `/tenants/${tenant}/servers`, {
        name: 'Main mailbox',
        imap: { ...loopbackImap(imap.port, user.user, user.password), auth: { ...passwordAuth(user.password) } },
        smtp: {
          host: '127.0.0.1',
          port: smtp.port,
          auth: { mode: 'imap' },
          heartbeatAddress: user.user,
          rateLimitPerHour: 100_000,
        },
      })
    ).body.id as string;
    const destination = (
      await call('POST', `/tenants/${tenant}/destinations`, { name: 'Support', address: user.user, serverId: server })
    ).body.id as string;

    let phase: Phase = 'before';
    let traffic = true;
    const outcomes: Outcome[] = [];
    const accepted = new Set<string>();
    let sent = 0;
    const routes = {
      send: () =>
        call('POST', `/tenants/${tenant}/destinations/${destination}/outbound`, {
          to: ['customer@example.net'],
          subject: `outage ${sent++}`,
          text: 'hello',
        }),
      feed: () => call('GET', `/tenants/${tenant}/destinations/${destination}/messages`),
      status: () => call('GET', `/tenants/${tenant}/servers/${server}/status`),
    };
    const worker = async (order: Array<keyof typeof routes>): Promise<void> => {
      for (let i = 0; traffic; i++) {
        const route = order[i % order.length] as keyof typeof routes;
        const at = phase;
        const answer = await routes[route]();
        outcomes.push({ phase: at, route, status: answer.status, code: answer.body.error?.code ?? null });
        if (route === 'send' && answer.status === 202) accepted.add(answer.body.id as string);
      }
    };
    // Customers write in all along: the mailbox is watched through the outage.
    let arrived = 0;
    const arrivals = async (): Promise<void> => {
      while (traffic) {
        const n = arrived++;
        imap.append(
          user.user,
          'INBOX',
          `From: c${n}@example.net\r\nTo: ${user.user}\r\nSubject: inbound ${n}\r\n\r\nHi\r\n`,
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    // Mostly sends, many in flight at once (the accept path group-commits their rows).
    const workers = [
      arrivals(),
      ...Array.from({ length: 8 }, () => worker(['send'])),
      worker(['feed', 'status']),
      worker(['status', 'feed']),
    ];
    const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    await settle(500);
    phase = 'stopping';
    await postgres.stop();
    phase = 'down';
    await settle(3_000);
    phase = 'starting';
    await postgres.start();
    const backAt = Date.now();
    phase = 'after';
    // Recovered by itself: sends and reads answer again, within 10 s of the database's return.
    for (;;) {
      const recent = outcomes.filter((o) => o.phase === 'after').slice(-30);
      if (
        recent.some((o) => o.route === 'send' && o.status === 202) &&
        recent.some((o) => o.route === 'status' && o.status === 200)
      )
        break;
      assert.ok(Date.now() - backAt < 10_000, `not recovered 10 s after the database returned: ${summary(recent)}`);
      await settle(100);
    }
    const recoveredMs = Date.now() - backAt;
    traffic = false;
    await Promise.all(workers);

    assert.deepEqual(unhandled, [], 'no unhandled rejection');
    assert.equal(engine.status, 'running');
    const during = outcomes.filter((o) => o.phase === 'down');
    assert.ok(during.length > 0, 'requests were made during the outage');
    const unexpected = during.filter((o) => o.status !== 503 || o.code !== 'DATABASE_UNAVAILABLE');
    assert.deepEqual(unexpected, [], `during the outage only 503 DATABASE_UNAVAILABLE: ${summary(during)}`);
    for (const route of ['send', 'feed', 'status'] as const) {
      assert.ok(
        during.some((o) => o.route === route),
        `${route} was asked during the outage`,
      );
    }
    const internal = outcomes.filter((o) => o.status >= 500 && o.status !== 503);
    assert.deepEqual(internal, [], `no 500 at any time: ${summary(outcomes)} (recovered in ${recoveredMs} ms)`);
    assert.ok(
      outcomes.filter((o) => o.phase === 'before' && o.route === 'send' && o.status === 202).length > 0,
      'sends were accepted before the outage',
    );

    // Every message answered 202 reaches the server, once (nothing accepted is lost).
    const copies = (): Map<string, number> => {
      const counts = new Map<string, number>();
      for (const m of smtp.messages) {
        const id = /^Message-ID: <(?:mailroom\.)?([^@>]+)@/im.exec(m.raw.toString())?.[1];
        if (id && accepted.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      return counts;
    };
    await eventually(async () => (copies().size === accepted.size ? true : undefined), 30_000);
    assert.deepEqual(
      [...copies().values()].filter((n) => n !== 1),
      [],
      'each accepted message delivered once',
    );

    // Every message that arrived in the mailbox reaches the destination, once.
    const routed = await eventually(async () => {
      const subjects: string[] = [];
      for (let after = 0; ;) {
        const page = await call(
          'GET',
          `/tenants/${tenant}/destinations/${destination}/messages?after=${after}&limit=500`,
        );
        const messages = page.body.messages as Array<{ subject: string }>;
        if (messages.length === 0) break;
        subjects.push(...messages.map((m) => m.subject));
        after = page.body.next as number;
      }
      return subjects.length >= arrived ? subjects : undefined;
    }, 30_000);
    assert.equal(new Set(routed).size, arrived, 'each arrival routed');
    assert.equal(routed.length, arrived, 'and only once');
  });
});

function passwordAuth(password: string): Obj {
  return { method: 'password', password, confirmPassword: password };
}

function summary(outcomes: Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = `${o.phase} ${o.route} ${o.status}${o.code ? ` ${o.code}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return JSON.stringify(Object.fromEntries(counts));
}
