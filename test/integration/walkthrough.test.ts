import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/config/config.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { Engine } from '../../src/main.js';
import { createTestDatabase, quietLogger } from '../support/database.js';
import { eventually } from '../support/mail.js';
import { PROJECT_ROOT } from '../support/processes.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * The README's five-minute walkthrough, step by step, against the whole engine (composition
 * root, HTTP API, inbound, outbound, response files) and the harness the README starts.
 */
describe('README walkthrough (whole engine, harness mail server)', function () {
  this.timeout(120_000);
  let imap: FakeImapServer;
  let smtp: SmtpHarness;
  let engine: Engine;
  let relay: NodeJS.Timeout;
  let dir: string;
  let base: string;
  const token = 'walkthrough-token';

  before(async function () {
    skipWithout(this, await postgresMissing());
    const user = { user: 'support@example.com', password: 'support' };
    imap = await startFakeImap({ users: [user] });
    smtp = await startSmtpHarness({ users: [user] });
    let copied = 0;
    relay = setInterval(() => {
      for (const m of smtp.messages.slice(copied)) imap.append(user.user, 'INBOX', m.raw);
      copied = smtp.messages.length;
    }, 50);
    dir = await mkdtemp(join(tmpdir(), 'mailroom-walkthrough-'));
    const config = loadConfig(
      {
        MAILROOM_DATABASE_URL: await createTestDatabase(),
        MAILROOM_SECRET_KEY: randomBytes(32).toString('base64'),
        MAILROOM_API_TOKEN: token,
        MAILROOM_HTTP_PORT: '0',
        MAILROOM_SPOOL_DIR: join(dir, 'spool'),
        MAILROOM_TEMPLATES_DIR: join(PROJECT_ROOT, 'templates'),
        MAILROOM_RECONCILE_INTERVAL_MS: '200',
      },
      dir,
    );
    engine = new Engine(config, quietLogger);
    await engine.start();
    base = `http://127.0.0.1:${engine.httpAddress.port}/api/v1`;
  });

  after(async () => {
    clearInterval(relay);
    await engine?.stop();
    await smtp?.close();
    await imap?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const del = { method: 'DELETE', headers: { authorization: `Bearer ${token}` } };

  /** Removes what the README's commands configured, so that the next test may configure the same account. */
  async function removeWalkthroughTenant(): Promise<void> {
    for (const tenant of (await api('GET', '/tenants')).body.tenants as Obj[]) {
      for (const d of (await api('GET', `/tenants/${tenant.id}/destinations`)).body.destinations as Obj[]) {
        await fetch(`${base}/tenants/${tenant.id}/destinations/${d.id}`, del);
      }
      for (const v of (await api('GET', `/tenants/${tenant.id}/servers`)).body.servers as Obj[]) {
        await fetch(`${base}/tenants/${tenant.id}/servers/${v.id}?discardQueued=true`, del);
      }
      await fetch(`${base}/tenants/${tenant.id}`, del);
    }
  }

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Obj }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Obj };
  }

  it("runs the README's walkthrough as written: install first, what it uses, the third terminal's commands", async () => {
    const readme = await readFile(join(PROJECT_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Five-minute walkthrough'), readme.indexOf('## Delivery to agents'));
    const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    // Followed literally on a fresh clone: the install comes before anything that needs it.
    assert.equal(blocks[0]?.trim(), 'npm ci', 'the first command is the install');
    assert.match(blocks[1] ?? '', /npm run mailroom -- harness/);
    for (const tool of ['curl', 'jq', 'python3']) {
      assert.ok(section.indexOf(`\`${tool}\``) < section.indexOf('```sh'), `${tool} is listed before the steps`);
    }
    const third = blocks.find((b) => b.startsWith('TOKEN=$(cat data/api-token)'));
    assert.ok(third, "the third terminal's commands");

    // The README's commands, against this engine and harness (their ports instead of the fixed ones).
    const origin = base.replace(/\/api\/v1$/, '');
    const script = third
      .replaceAll('http://127.0.0.1:8025', origin)
      .replaceAll('"port": 1143', `"port": ${imap.port}`)
      .replaceAll('"port": 2525', `"port": ${smtp.port}`)
      .replaceAll('SMTP("127.0.0.1", 2525)', `SMTP("127.0.0.1", ${smtp.port})`);
    assert.notEqual(script, third);
    const commands = script.split('\n').filter((l) => !l.trimStart().startsWith('#'));
    assert.ok(!commands.some((l) => /8025|1143|2525/.test(l)), 'every fixed port was replaced');
    const cwd = join(dir, 'clone');
    await mkdir(join(cwd, 'data'), { recursive: true });
    await writeFile(join(cwd, 'data', 'api-token'), `${token}\n`);
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd,
      timeout: 100_000,
    }).finally(removeWalkthroughTenant);
    const lines = stdout.split('\n');
    // 2. Test connection: both logins, in plain words.
    assert.match(
      stdout,
      /"detail": "connected and logged in as support@example.com \(without TLS: the server offered no STARTTLS/,
    );
    // 5. The message arrived at the destination.
    assert.match(stdout, /"subject": "Where is my order\?"/);
    // 6. "queued" read at once (or "sending", or already "sent"), then "sent" with the server's reply.
    const firstRead = lines.find((l) => /^"(queued|sending|sent)"$/.test(l));
    assert.ok(firstRead, stdout);
    assert.match(stdout, /"status": "sent",\s*"lastReply": "250/);
    // The rules an administrator relies on: a server in use is not deleted.
    assert.match(stdout, /"code":"SERVER_IN_USE"/);
  });

  it('adds a tenant and an account, sees a message arrive, replies with a response file', async () => {
    const tenant = (await api('POST', '/tenants', { name: 'Support EMEA (through the API)' })).body.id as string;
    const server = await api('POST', `/tenants/${tenant}/servers`, {
      name: 'Main mailbox',
      imap: {
        host: '127.0.0.1',
        port: imap.port,
        secure: false,
        user: 'support@example.com',
        auth: { method: 'password', password: 'support', confirmPassword: 'support' },
      },
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'imap' }, rateLimitPerHour: 600 },
    });
    assert.equal(server.status, 201, JSON.stringify(server.body));
    const dest = await api('POST', `/tenants/${tenant}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      fromText: 'ACME Support',
      description: 'First-level support',
      serverId: server.body.id,
    });
    assert.equal(dest.status, 201);

    // A customer writes in.
    const customer = nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtp.port,
      secure: false,
      auth: { user: 'support@example.com', pass: 'support' },
    });
    await customer.sendMail({
      from: 'Jane Doe <jane@example.net>',
      to: 'support@example.com',
      subject: 'Where is my order?',
      text: 'Hello, order 4711 has not arrived.',
    });
    customer.close();

    const feed = await api('GET', `/tenants/${tenant}/destinations/${dest.body.id}/messages?after=0&wait=20`);
    const message = feed.body.messages[0] as Obj;
    assert.equal(message.subject, 'Where is my order?');
    assert.deepEqual(message.from, { address: 'jane@example.net', name: 'Jane Doe' });

    const out = await api('POST', `/tenants/${tenant}/destinations/${dest.body.id}/outbound`, {
      inReplyTo: message.id,
      response: { file: 'support.xml', name: 'Acknowledgement' },
      agent: { name: 'Max Agent', firstName: 'Max' },
    });
    assert.equal(out.status, 202, JSON.stringify(out.body));
    const sent = await eventually(async () => {
      const s = await api('GET', `/tenants/${tenant}/destinations/${dest.body.id}/outbound/${out.body.id}`);
      return s.body.status === 'sent' ? s.body : undefined;
    }, 20_000);
    assert.match(sent.lastReply, /^250/);
    const reply = smtp.messages.filter((m) => m.envelope.to.includes('jane@example.net')).at(-1);
    const parsed = await simpleParser(reply?.raw as Buffer);
    const text = parsed.text ?? '';
    assert.equal(parsed.subject, 'Re: Where is my order?');
    assert.match(text, /Dear Jane Doe,/);
    assert.match(text, new RegExp(`case number is ${message.id}`));

    const status = await api('GET', `/tenants/${tenant}/servers/${server.body.id}/status`);
    assert.equal(status.body.inbound.state, 'idle');
    assert.equal(status.body.watchedBy.thisInstance, true, 'this (only) instance watches the mailbox');
    assert.equal(status.body.outbound.queue.state, 'ok');
    const refused = await api('DELETE', `/tenants/${tenant}/servers/${server.body.id}`);
    assert.equal(refused.body.error.code, 'SERVER_IN_USE');

    // Operations: readiness, the lease of the server (one instance: this one), the metrics.
    const origin = base.replace(/\/api\/v1$/, '');
    const ready = await fetch(`${origin}/readyz`);
    assert.equal(ready.status, 200);
    const readiness = (await ready.json()) as Obj;
    assert.deepEqual(
      (readiness.checks as Obj[]).map((c) => [c.name, c.ok]),
      [
        ['engine', true],
        ['database', true],
        ['leases', true],
      ],
    );
    const cluster = await api('GET', '/cluster');
    assert.equal(cluster.body.instances.length, 1);
    assert.deepEqual(
      (cluster.body.leases as Obj[]).map((l) => [l.serverId, l.owner]),
      [[server.body.id, cluster.body.self.owner]],
    );
    assert.equal((await fetch(`${origin}/metrics`)).status, 401, 'metrics need the administrator token');
    const scrape = await fetch(`${origin}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.match(scrape.headers.get('content-type') ?? '', /^text\/plain/);
    const metrics = await scrape.text();
    const sample = (name: string, labels: string): number => {
      const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
      assert.ok(line, `metric ${name} with ${labels} in:\n${metrics.slice(0, 4000)}`);
      return Number(line.split(' ').pop());
    };
    const serverLabel = `server_id="${server.body.id}"`;
    assert.equal(sample('mailroom_server_lease_owned', serverLabel), 1);
    assert.equal(sample('mailroom_imap_session_state', `${serverLabel},state="idle"`), 1);
    assert.match(metrics, /^mailroom_live_instances 1$/m);
    assert.equal(sample('mailroom_spool_depth', serverLabel), 0, 'the reply left the spool');
    assert.equal(sample('mailroom_outbound_messages_total', `${serverLabel},outcome="sent"`), 1);
    assert.ok(sample('mailroom_inbound_messages_total', `${serverLabel},outcome="routed"`) >= 1);
    assert.match(metrics, /^mailroom_process_resident_memory_bytes \d+/m);
  });
});
