import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeServiceAccountKeyFile } from '../../src/harness/fake-idp/index.js';
import { startFakeImap } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness } from '../../src/harness/smtp-harness.js';
import { queuedRow } from '../../src/store/rows.js';
import { Store } from '../../src/store/store.js';
import { createTestDatabase, quietLogger } from '../support/database.js';
import { CANARY_PASSWORD, loopbackImap, serverBody } from '../support/fixtures.js';
import { PROJECT_ROOT, runCli } from '../support/processes.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';

describe('mailroom CLI (against PostgreSQL, over the services)', function () {
  this.timeout(60_000);
  let env: Record<string, string>;

  before(async function () {
    skipWithout(this, await postgresMissing());
    env = {
      MAILROOM_DATABASE_URL: await createTestDatabase(),
      MAILROOM_SECRET_KEY: randomBytes(32).toString('base64'),
      MAILROOM_API_TOKEN: 'cli-test-token',
    };
  });

  it('creates a tenant, a server and a destination, and prints JSON with --json', async () => {
    const tenant = await runCli(['--json', 'tenants', 'create', 'CLI tenant'], env);
    assert.equal(tenant.code, 0, tenant.stderr);
    const tenantId = (JSON.parse(tenant.stdout) as { id: string }).id;

    const server = await runCli(
      ['--json', 'servers', 'create', 'CLI tenant', '--data', JSON.stringify(serverBody(1))],
      env,
    );
    assert.equal(server.code, 0, server.stderr);
    const created = JSON.parse(server.stdout) as {
      id: string;
      tenantId: string;
      imap: { auth: { hasPassword: boolean } };
    };
    assert.equal(created.tenantId, tenantId);
    assert.equal(created.imap.auth.hasPassword, true);
    assert.ok(!server.stdout.includes(CANARY_PASSWORD));

    const destination = await runCli(
      [
        '--json',
        'destinations',
        'create',
        tenantId,
        '--data',
        JSON.stringify({ name: 'Support', address: 'support@example.com', serverId: created.id }),
      ],
      env,
    );
    assert.equal(destination.code, 0, destination.stderr);

    const list = await runCli(['servers', 'list', 'CLI tenant'], env);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /Server 1\s+agent1@example.com@imap.example.com/);
  });

  it('reports rule violations with the code and field, and a non-zero exit', async () => {
    const refused = await runCli(['servers', 'delete', 'CLI tenant', 'Server 1'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /error SERVER_IN_USE: e-mail server 'Server 1' is used by destination 'Support'/);
    const invalid = await runCli(['servers', 'create', 'CLI tenant', '--data', '{"name":"x"}'], env);
    assert.equal(invalid.code, 2);
    // Every field at fault at once, the first named as the field.
    assert.match(invalid.stderr, /error VALIDATION_FAILED: 'imap' is required; 'smtp' is required \[field: imap\]/);
  });

  it("creates the README's example server from its file (--file examples/server.json)", async () => {
    const tenant = await runCli(['tenants', 'create', 'Example tenant'], env);
    assert.equal(tenant.code, 0, tenant.stderr);
    const created = await runCli(
      ['--json', 'servers', 'create', 'Example tenant', '--file', 'examples/server.json'],
      env,
      PROJECT_ROOT,
    );
    assert.equal(created.code, 0, created.stderr);
    const server = JSON.parse(created.stdout) as {
      name: string;
      imap: { port: number; auth: { hasPassword: boolean } };
    };
    assert.equal(server.name, 'Main mailbox');
    assert.equal(server.imap.port, 1143);
    assert.equal(server.imap.auth.hasPassword, true);
  });

  it('asks for the stored password again when an update changes the port or TLS setting', async () => {
    const update = (patch: unknown) =>
      runCli(['servers', 'update', 'CLI tenant', 'Server 1', '--data', JSON.stringify(patch)], env);
    const plain = await update({ imap: { secure: false, port: 10143 } });
    assert.equal(plain.code, 2, plain.stderr);
    assert.match(
      plain.stderr,
      /error VALIDATION_FAILED: .*IMAP port and TLS setting .* \[field: imap\.auth\.password\]/,
    );
    const given = await update({
      imap: { secure: false, port: 10143, auth: { method: 'password', password: 'again' } },
    });
    assert.equal(given.code, 0, given.stderr);
  });

  it('creates a Gmail server signing in with a service account key file (--key-file), never printing the key', async () => {
    const tenant = await runCli(['tenants', 'create', 'Workspace tenant'], env);
    assert.equal(tenant.code, 0, tenant.stderr);
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-key-'));
    try {
      const clientEmail = 'mailroom@project.iam.gserviceaccount.com';
      const keyPath = join(dir, 'key.json');
      await writeFile(keyPath, makeServiceAccountKeyFile(clientEmail).keyFile, { mode: 0o600 });
      const body = {
        name: 'Gmail',
        imap: { host: 'imap.gmail.com', user: 'support@workspace.test', folders: ['INBOX', 'Support'] },
        smtp: { host: 'smtp.gmail.com', port: 465, auth: { mode: 'imap' } },
      };
      const created = await runCli(
        ['--json', 'servers', 'create', 'Workspace tenant', '--data', JSON.stringify(body), '--key-file', keyPath],
        env,
      );
      assert.equal(created.code, 0, created.stderr);
      assert.ok(!created.stdout.includes('PRIVATE KEY'), 'the key is never printed');
      const server = JSON.parse(created.stdout) as {
        imap: {
          folders: string[];
          auth: { method: string; oauth2: { flow: string; clientId: string; hasClientSecret: boolean } };
        };
      };
      assert.equal(server.imap.auth.method, 'oauth2');
      assert.deepEqual(
        [server.imap.auth.oauth2.flow, server.imap.auth.oauth2.clientId, server.imap.auth.oauth2.hasClientSecret],
        ['service-account', clientEmail, true],
      );
      assert.deepEqual(server.imap.folders, ['INBOX', 'Support']);

      // A new key with only --key-file; a key of another account, or no file, refused naming the field.
      const rotated = await runCli(['servers', 'update', 'Workspace tenant', 'Gmail', '--key-file', keyPath], env);
      assert.equal(rotated.code, 0, rotated.stderr);
      await writeFile(keyPath, makeServiceAccountKeyFile('other@project.iam.gserviceaccount.com').keyFile);
      const other = await runCli(
        [
          'servers',
          'update',
          'Workspace tenant',
          'Gmail',
          '--data',
          JSON.stringify({ imap: { auth: { clientId: clientEmail } } }),
          '--key-file',
          keyPath,
        ],
        env,
      );
      assert.equal(other.code, 2);
      assert.match(other.stderr, /belongs to other@project\.iam\.gserviceaccount\.com \[field: imap\.auth\.clientId\]/);
      const missing = await runCli(
        ['servers', 'update', 'Workspace tenant', 'Gmail', '--key-file', join(dir, 'none.json')],
        env,
      );
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /the key file cannot be read: .*\[field: key-file\]/);
      assert.ok(!other.stderr.includes('PRIVATE KEY') && !missing.stderr.includes('PRIVATE KEY'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('has help for every command', async () => {
    const help = await runCli(['servers', '--help'], env);
    assert.equal(help.code, 0);
    for (const sub of ['list', 'show', 'create', 'update', 'copy', 'test', 'delete'])
      assert.match(help.stdout, new RegExp(`\\b${sub}\\b`));
  });

  it('tests an e-mail server’s connection: IMAP and SMTP logins, exit 1 when a side fails', async () => {
    const imap = await startFakeImap({ users: [{ user: 'box@example.com', password: 'imap-pw' }] });
    const smtp = await startSmtpHarness({});
    try {
      const body = {
        name: 'Tested',
        enabled: false,
        imap: loopbackImap(imap.port, 'box@example.com', 'imap-pw'),
        smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'none' } },
      };
      const created = await runCli(['servers', 'create', 'CLI tenant', '--data', JSON.stringify(body)], env);
      assert.equal(created.code, 0, created.stderr);
      const ok = await runCli(['--json', 'servers', 'test', 'CLI tenant', 'Tested'], env);
      assert.equal(ok.code, 0, ok.stderr);
      const result = JSON.parse(ok.stdout) as { imap: { ok: boolean }; smtp: { ok: boolean } };
      assert.deepEqual([result.imap.ok, result.smtp.ok], [true, true], ok.stdout);
      await smtp.stop();
      const down = await runCli(['--json', 'servers', 'test', 'CLI tenant', 'Tested'], env);
      assert.equal(down.code, 1, down.stdout);
      assert.equal((JSON.parse(down.stdout) as { smtp: { ok: boolean } }).smtp.ok, false);
    } finally {
      await imap.close();
      await smtp.close();
    }
  });

  it('cancels a waiting message through the engine instance holding it, and lists the tenant’s dead letters', async function () {
    // Twelve CLI processes, ~4 s each here (tsx compiles the program each time): more than the file's minute.
    this.timeout(180_000);
    const spoolDir = await mkdtemp(join(tmpdir(), 'mailroom-cli-spool-'));
    const store = await Store.open({ databaseUrl: env.MAILROOM_DATABASE_URL as string }, quietLogger);
    try {
      const [ids] = (await store.query(
        `SELECT t.id AS tenant_id, d.id AS destination_id, d.server_id FROM tenants t
           JOIN destinations d ON d.tenant_id = t.id WHERE t.name = 'CLI tenant'`,
      )) as Array<{ tenant_id: string; destination_id: string; server_id: string }>;
      assert.ok(ids, 'the tenant and destination of the first test');
      const row = (subject: string) =>
        queuedRow({
          id: randomUUID(),
          tenantId: ids.tenant_id,
          destinationId: ids.destination_id,
          serverId: ids.server_id,
          messageIdHeader: `<${subject}@mailroom.invalid>`,
          conversationId: null,
          subject,
          recipients: ['customer@example.net'],
          instanceId: 'engine-1',
        });
      const waiting = row('waiting');
      const dead = { ...row('dead'), status: 'failed' as const, lastReply: '550 no', deadLetteredAt: new Date() };
      await store.outbound.insert(waiting);
      await store.outbound.insert(dead);
      const cliEnv = { ...env, MAILROOM_SPOOL_DIR: spoolDir, MAILROOM_INSTANCE_ID: 'cli-host' };

      const cancel = await runCli(['--json', 'outbound', 'cancel', 'CLI tenant', 'Support', waiting.id], cliEnv);
      assert.equal(cancel.code, 0, cancel.stderr);
      const answer = JSON.parse(cancel.stdout) as { requested: string; instance: string; state: string; when: string };
      assert.match(answer.requested, /^\d+$/, 'the request id');
      assert.deepEqual(
        { instance: answer.instance, state: answer.state, when: answer.when },
        { instance: 'engine-1', state: 'requested', when: 'when that instance starts again (it is not running)' },
      );
      const requests = (await store.query(`SELECT action, instance_id FROM outbound_requests WHERE outbound_id = $1`, [
        waiting.id,
      ])) as Array<{ action: string; instance_id: string }>;
      assert.deepEqual(requests, [{ action: 'cancel', instance_id: 'engine-1' }], 'left for the engine holding it');

      // Listed while it waits, and withdrawn (engine-1 may never come back).
      const waitingRequests = await runCli(['--json', 'outbound', 'requests', 'CLI tenant'], cliEnv);
      assert.equal(waitingRequests.code, 0, waitingRequests.stderr);
      const shown = JSON.parse(waitingRequests.stdout) as Array<Record<string, unknown>>;
      assert.deepEqual(
        shown.map((r) => [r['requestId'], r['id'], r['action'], r['state'], r['holderRunning']]),
        [[answer.requested, waiting.id, 'cancel', 'requested', false]],
      );
      const withdraw = await runCli(['--json', 'outbound', 'withdraw', 'CLI tenant', answer.requested], cliEnv);
      assert.equal(withdraw.code, 0, withdraw.stderr);
      assert.equal((JSON.parse(withdraw.stdout) as { state: string }).state, 'withdrawn');
      const none = await runCli(['--json', 'outbound', 'requests', 'CLI tenant'], cliEnv);
      assert.deepEqual(JSON.parse(none.stdout), [], 'nothing waits any more');
      const all = await runCli(['--json', 'outbound', 'requests', 'CLI tenant', '--all'], cliEnv);
      assert.deepEqual(
        (JSON.parse(all.stdout) as Array<{ state: string }>).map((r) => r.state),
        ['withdrawn'],
      );
      const twice = await runCli(['outbound', 'withdraw', 'CLI tenant', answer.requested], cliEnv);
      assert.equal(twice.code, 1);
      assert.match(twice.stderr, /error OUTBOUND_REQUEST_NOT_WAITING: request \d+ is settled already \(withdrawn\)/);

      const list = await runCli(['--json', 'dead-letters', 'list', 'CLI tenant'], cliEnv);
      assert.equal(list.code, 0, list.stderr);
      const listed = JSON.parse(list.stdout) as Array<{ id: string; instanceId: string; reply: string }>;
      assert.deepEqual(
        listed.map((d) => [d.id, d.instanceId, d.reply]),
        [[dead.id, 'engine-1', '550 no']],
      );

      // A deleted server's dead letters, named by the server's id.
      const goneServer = randomUUID();
      const orphan = { ...dead, ...row('orphan'), serverId: goneServer, status: 'failed' as const };
      await store.outbound.insert({ ...orphan, deadLetteredAt: new Date() });
      const ofGone = await runCli(['--json', 'dead-letters', 'list', 'CLI tenant', goneServer], cliEnv);
      assert.equal(ofGone.code, 0, ofGone.stderr);
      assert.deepEqual(
        (JSON.parse(ofGone.stdout) as Array<{ id: string }>).map((d) => d.id),
        [orphan.id],
      );

      const refused = await runCli(['outbound', 'cancel', 'CLI tenant', 'Support', dead.id], cliEnv);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /error OUTBOUND_NOT_WAITING: outgoing message .* is failed, not waiting to be sent/);

      // engine-1 is gone for good: its spool is given up.
      const retire = await runCli(['--json', 'instances', 'retire', 'engine-1'], cliEnv);
      assert.equal(retire.code, 0, retire.stderr);
      const retired = JSON.parse(retire.stdout) as Record<string, unknown>;
      assert.deepEqual(
        [retired['instanceId'], retired['failedMessages'], retired['unlistedDeadLetters']],
        ['engine-1', 1, 2],
      );
      assert.equal((await store.outbound.byId(waiting.id))?.status, 'failed');
      const afterRetire = await runCli(['--json', 'dead-letters', 'list', 'CLI tenant'], cliEnv);
      assert.deepEqual(JSON.parse(afterRetire.stdout), []);
      const self = await runCli(['instances', 'retire', 'cli-host'], cliEnv);
      assert.equal(self.code, 1);
      assert.match(self.stderr, /error INSTANCE_RUNNING: instance cli-host runs \(it is this one\)/);
    } finally {
      await store.close();
      await rm(spoolDir, { recursive: true, force: true });
    }
  });

  it('answers bad input with one line `error …` and a non-zero exit: no stack, no hang', async function () {
    // Six CLI runs of ~4 s each here; a loaded machine takes several times as long (a hang is minutes).
    this.timeout(240_000);
    const busy = createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const busyPort = String((busy.address() as { port: number }).port);
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['start'], { MAILROOM_HTTP_PORT: 'abc' }, /^error CONFIG_INVALID: MAILROOM_HTTP_PORT must be a whole number/],
      [['servers', 'create', 'CLI tenant', '--file', '/nonexistent.json'], {}, /^error VALIDATION_FAILED: .*ENOENT/],
      [
        ['dead-letters', 'requeue', 'CLI tenant', randomUUID(), 'notauuid'],
        {},
        /^error VALIDATION_FAILED: 'notauuid' is not a dead letter id/,
      ],
      [['outbound', 'cancel', 'CLI tenant', 'Support', 'notauuid'], {}, /^error VALIDATION_FAILED: 'notauuid' is not/],
      [['harness', '--imap-port', 'abc'], {}, /^error VALIDATION_FAILED: --imap-port must be a port number/],
      // The IMAP side starts, the SMTP port is taken: the IMAP server must not keep the process up.
      [['harness', '--imap-port', '0', '--smtp-port', busyPort], {}, /^error: listen EADDRINUSE/],
    ];
    try {
      for (const [args, extra, expected] of cases) {
        const result = await runCli(args, { ...env, ...extra }, PROJECT_ROOT, 40_000);
        const what = `${args.join(' ')}: ${result.stderr}`;
        assert.ok(result.code !== null && result.code !== 0, `exits non-zero promptly: ${what}`);
        assert.match(result.stderr, expected, what);
        assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${what}`);
      }
    } finally {
      busy.close();
    }
  });

  it('refuses to start on a setting that cannot work, naming it once: the key, the CA folder, the port', async () => {
    const busy = createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const busyPort = String((busy.address() as { port: number }).port);
    const spoolDir = await mkdtemp(join(tmpdir(), 'mailroom-cli-start-'));
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ MAILROOM_SECRET_KEY: 'c2hvcnQ=' }, /^error CONFIG_INVALID: MAILROOM_SECRET_KEY must be 32 random bytes/],
      [
        { MAILROOM_CA_DIR: '/nonexistent' },
        /^error CONFIG_INVALID: MAILROOM_CA_DIR must be a directory .* does not exist/,
      ],
      [
        { MAILROOM_HTTP_PORT: busyPort, MAILROOM_HTTP_HOST: '127.0.0.1' },
        new RegExp(`^error CONFIG_INVALID: MAILROOM_HTTP_PORT: port ${busyPort} is already in use on 127\\.0\\.0\\.1`),
      ],
      [
        { MAILROOM_MESSAGE_ID_DOMAIN: 'a b@c' },
        /^error CONFIG_INVALID: MAILROOM_MESSAGE_ID_DOMAIN must be a domain name/,
      ],
    ];
    try {
      for (const [extra, expected] of cases) {
        const result = await runCli(
          ['start'],
          { ...env, MAILROOM_SPOOL_DIR: spoolDir, ...extra },
          PROJECT_ROOT,
          60_000,
        );
        const what = `${JSON.stringify(extra)}: ${result.stderr}${result.stdout}`;
        assert.equal(result.code, 1, what);
        assert.match(result.stderr, expected, what);
        assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${what}`);
        assert.doesNotMatch(result.stdout, /could not start|"stack"/, `said once, without a stack: ${what}`);
      }
    } finally {
      busy.close();
      await rm(spoolDir, { recursive: true, force: true });
    }
  });

  it('uses the validated log level: a blank or padded MAILROOM_LOG_LEVEL works', async () => {
    for (const level of ['', ' warn ']) {
      const listed = await runCli(['tenants', 'list'], { ...env, MAILROOM_LOG_LEVEL: level });
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /CLI tenant/);
    }
  });
});
