import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { loadConfig, type Config } from '../../src/config/config.js';
import { Engine } from '../../src/main.js';
import { createTestDatabase, isPostgresReachable, quietLogger } from '../support/database.js';
import { eventually } from '../support/mail.js';
import { CLI_ENTRY, PROJECT_ROOT, runCli } from '../support/processes.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER = 'office@example.com';
/** A second account of the harness (a second mailbox, a second choice on the sign-in page). */
const OTHER = 'alice@example.com';
const PASSWORD = 'office-pw';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request to the harness's identity provider, trusting only its CA (as a browser that imported it). */
function idpRequest(
  url: string,
  ca: string,
  options: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? (body === undefined ? 'GET' : 'POST'),
        ca,
        headers: {
          ...(body !== undefined && { 'content-type': 'application/x-www-form-urlencoded' }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * `mailroom harness --oauth` as a person runs it (the CLI, its printed settings and server body),
 * with the whole engine configured from what it printed: a device-code sign-in finished on the
 * harness's sign-in page over HTTP, mail read and sent over XOAUTH2, a restart that keeps the
 * sign-in, a revocation that leads to REAUTH_REQUIRED, and a second sign-in.
 */
describe('mailroom harness --oauth (sign-in page, engine over XOAUTH2)', function () {
  this.timeout(180_000);
  let dir: string;
  let harness: ChildProcess;
  let printed = '';
  let config: Config;
  let engine: Engine | undefined;
  let base: string;
  const token = 'harness-oauth-token';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-harness-oauth-'));
    harness = spawn(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        CLI_ENTRY,
        'harness',
        '--oauth',
        ...['--imap-port', '0', '--smtp-port', '0', '--idp-port', '0'],
        ...['--dir', join(dir, 'harness'), '--user', USER, '--user', OTHER, '--password', PASSWORD],
      ],
      { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    harness.stderr?.on('data', (d: Buffer) => (printed += d.toString()));
    await new Promise<void>((resolve, reject) => {
      harness.stdout?.on('data', (d: Buffer) => {
        printed += d.toString();
        if (printed.includes('Ctrl-C stops.')) resolve();
      });
      harness.once('exit', (code) => reject(new Error(`the harness exited (${code}):\n${printed}`)));
    });
  });

  after(async () => {
    await engine?.stop();
    if (harness && harness.exitCode === null) {
      harness.kill('SIGTERM');
      await once(harness, 'exit');
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Obj }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Obj };
  }

  async function startEngine(): Promise<void> {
    engine = new Engine(config, quietLogger);
    await engine.start();
    base = `http://127.0.0.1:${engine.httpAddress.port}/api/v1`;
  }

  it('prints the settings and the server body; the engine signs in on its page, reads and sends, survives a restart, and a revocation asks for a new sign-in', async () => {
    // What the harness printed: the CA and the engine's two settings, a server body, the page.
    const settings = /^ {2}(MAILROOM_OAUTH_CA_FILE=\S+) (MAILROOM_OAUTH_ALLOW_PRIVATE=\S+) npm start$/m.exec(printed);
    assert.ok(settings, printed);
    const env = Object.fromEntries(settings.slice(1).map((s) => s.split('=', 2) as [string, string]));
    const caFile = env.MAILROOM_OAUTH_CA_FILE as string;
    assert.equal(caFile, join(dir, 'harness', 'idp-ca.pem'));
    const ca = await readFile(caFile, 'utf8');
    assert.match(ca, /^-----BEGIN CERTIFICATE-----/);
    assert.equal((await stat(join(dir, 'harness', 'idp-server.key'))).mode & 0o077, 0, 'the key is private');
    const bodyLine = printed.split('\n').find((l) => l.startsWith('  {"name"'));
    assert.ok(bodyLine, printed);
    const serverBody = JSON.parse(bodyLine) as Obj;
    const authorityHost: string = serverBody.imap.auth.authorityHost;
    const pageUrl = `${authorityHost}/devicelogin`;
    assert.match(printed, new RegExp(`sign-in page \\(verificationUri\\) +${pageUrl}`));
    const smtpPort = Number(/SMTP {2}port (\d+)/.exec(printed)?.[1]);

    const postgres = await isPostgresReachable();
    config = loadConfig(
      {
        ...(postgres && { MAILROOM_DATABASE_URL: await createTestDatabase() }),
        MAILROOM_SECRET_KEY: randomBytes(32).toString('base64'),
        MAILROOM_API_TOKEN: token,
        MAILROOM_HTTP_PORT: '0',
        MAILROOM_SPOOL_DIR: join(dir, 'spool'),
        MAILROOM_TEMPLATES_DIR: join(PROJECT_ROOT, 'templates'),
        ...env,
      },
      dir,
    );
    await startEngine();

    const tenant = (await api('POST', '/tenants', { name: 'OAuth trial' })).body.id as string;
    const server = await api('POST', `/tenants/${tenant}/servers`, serverBody);
    assert.equal(server.status, 201, JSON.stringify(server.body));
    const serverId = server.body.id as string;
    const dest = await api('POST', `/tenants/${tenant}/destinations`, {
      name: 'Office',
      address: USER,
      fromText: 'ACME Office',
      serverId,
    });
    assert.equal(dest.status, 201, JSON.stringify(dest.body));
    const oauth = `/tenants/${tenant}/servers/${serverId}/oauth`;

    /** Get Code, then the person's part on the sign-in page; resolves once the status is COMPLETE. */
    const signIn = async (): Promise<void> => {
      const code = await api('POST', `${oauth}/device-code`, { purpose: 'imap' });
      assert.equal(code.status, 200, JSON.stringify(code.body));
      assert.equal(code.body.verificationUri, pageUrl);
      const page = await idpRequest(pageUrl, ca, { headers: { accept: 'text/html' } });
      assert.equal(page.status, 200);
      assert.match(page.headers['content-type'] as string, /^text\/html/);
      const csp = page.headers['content-security-policy'] as string;
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /form-action 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline|script-src/);
      assert.doesNotMatch(page.body, /<script|https?:\/\//i, 'no script, nothing loaded from anywhere');
      assert.match(page.body, /<form method="post" action="\/devicelogin">/);
      for (const account of [USER, OTHER]) {
        assert.match(page.body, new RegExp(`<input type="radio" name="account" value="${account}"`));
      }
      assert.match(page.body, /1 code is waiting/);
      // A form on another site cannot approve through the person's browser.
      const forged = await idpRequest(pageUrl, ca, {
        form: { code: code.body.userCode, account: USER, action: 'sign-in' },
        headers: { accept: 'text/html', origin: 'https://attacker.example' },
      });
      assert.equal(forged.status, 403);
      assert.equal((await api('GET', oauth)).body.imap.status, 'PENDING');
      const wrong = await idpRequest(pageUrl, ca, {
        form: { code: 'NOTACODE', account: USER, action: 'sign-in' },
        headers: { accept: 'text/html', origin: authorityHost },
      });
      assert.equal(wrong.status, 400);
      assert.match(wrong.body, /That code is not known/);
      // As typed by a person: lower case, with a space.
      const typed = `${code.body.userCode.slice(0, 4).toLowerCase()} ${code.body.userCode.slice(4)}`;
      const done = await idpRequest(pageUrl, ca, {
        form: { code: typed, account: USER, action: 'sign-in' },
        headers: { accept: 'text/html', origin: authorityHost },
      });
      assert.equal(done.status, 200, done.body);
      assert.match(done.body, /You have signed in to app mailroom-harness as office@example\.com/);
      const status = await eventually(async () => {
        const res = await api('GET', oauth);
        return res.body.imap.status === 'COMPLETE' ? res.body : undefined;
      }, 30_000);
      assert.equal(status.imap.account, USER);
      assert.equal(status.smtp.status, 'COMPLETE', 'SMTP shares the IMAP sign-in');
    };

    let sent = 0;
    /** A customer writes in (password login to the harness's SMTP); the engine reads it over XOAUTH2. */
    const mailFlows = async (subject: string): Promise<Obj> => {
      const customer = nodemailer.createTransport({
        host: '127.0.0.1',
        port: smtpPort,
        secure: false,
        auth: { user: USER, pass: PASSWORD },
      });
      await customer.sendMail({ from: 'Jane Doe <jane@example.net>', to: USER, subject, text: 'Hello.' });
      customer.close();
      sent += 1;
      return eventually(async () => {
        const res = await api('GET', `/tenants/${tenant}/destinations/${dest.body.id}/messages`);
        return (res.body.messages as Obj[]).find((m) => m.subject === subject);
      }, 30_000);
    };

    await signIn();
    const message = await mailFlows('Signed in over OAuth');
    // A reply goes out over the harness's SMTP with XOAUTH2 (SMTP mode imap: the same sign-in).
    const out = await api('POST', `/tenants/${tenant}/destinations/${dest.body.id}/outbound`, {
      inReplyTo: message.id,
      response: { file: 'support.xml', name: 'Acknowledgement' },
      agent: { name: 'Max Agent', firstName: 'Max' },
    });
    assert.equal(out.status, 202, JSON.stringify(out.body));
    const reply = await eventually(async () => {
      const res = await api('GET', `/tenants/${tenant}/destinations/${dest.body.id}/outbound/${out.body.id}`);
      return res.body.status === 'sent' ? res.body : undefined;
    }, 30_000);
    assert.match(reply.lastReply, /^250/);

    // Restart: the sealed token cache keeps the sign-in.
    await engine?.stop();
    engine = undefined;
    await startEngine();
    assert.equal((await api('GET', oauth)).body.imap.status, 'COMPLETE');
    await mailFlows('After a restart');

    // Revoke on the harness (curl's way: JSON answer): refresh refused, connections ended.
    const revoked = await idpRequest(`${pageUrl}/revoke`, ca, { form: { account: USER } });
    assert.equal(revoked.status, 200, revoked.body);
    assert.equal(JSON.parse(revoked.body).ok, true);
    const reauth = await eventually(async () => {
      const res = await api('GET', oauth);
      return res.body.imap.status === 'REAUTH_REQUIRED' ? res.body : undefined;
    }, 30_000);
    assert.ok(reauth.imap.error, 'the status says why');

    // Sign in again: mail flows again.
    await signIn();
    await mailFlows('Signed in again');
    assert.equal(sent, 3);
  });

  it('expires a code on request: a server without a sign-in turns EXPIRED, and the code cannot be entered', async () => {
    assert.ok(engine, 'the engine of the first test runs');
    const settings = /^ {2}MAILROOM_OAUTH_CA_FILE=(\S+) /m.exec(printed);
    const ca = await readFile(settings?.[1] as string, 'utf8');
    const bodyLine = printed.split('\n').find((l) => l.startsWith('  {"name"')) as string;
    const body = JSON.parse(bodyLine) as Obj;
    const [tenant] = (await api('GET', '/tenants')).body.tenants as Obj[];
    const server = await api('POST', `/tenants/${tenant?.id}/servers`, {
      ...body,
      name: 'Alice',
      imap: { ...body.imap, user: OTHER },
    });
    assert.equal(server.status, 201, JSON.stringify(server.body));
    const oauth = `/tenants/${tenant?.id}/servers/${server.body.id}/oauth`;
    const code = await api('POST', `${oauth}/device-code`, { purpose: 'imap' });
    assert.equal(code.status, 200, JSON.stringify(code.body));
    const unknown = await idpRequest(`${code.body.verificationUri}/expire`, ca, { form: { code: 'NOTACODE' } });
    assert.equal(unknown.status, 400);
    assert.equal(JSON.parse(unknown.body).error.field, 'code');
    const expired = await idpRequest(`${code.body.verificationUri}/expire`, ca, { form: { code: code.body.userCode } });
    assert.equal(expired.status, 200, expired.body);
    await eventually(async () => {
      const res = await api('GET', oauth);
      return res.body.imap.status === 'EXPIRED' ? true : undefined;
    }, 30_000);
    const late = await idpRequest(code.body.verificationUri, ca, {
      form: { code: code.body.userCode, account: OTHER, action: 'sign-in' },
      headers: { accept: 'text/html' },
    });
    assert.equal(late.status, 400);
    assert.match(late.body, /That code has expired/);
  });

  it('answers bad options with one line `error …` and exits at once, leaving nothing running', async () => {
    const busy = createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const busyPort = String((busy.address() as AddressInfo).port);
    const cases: Array<[string[], RegExp]> = [
      [['--oauth', '--idp-port', '99999'], /^error VALIDATION_FAILED: --idp-port must be a port number/],
      [['--user', 'nobody'], /^error VALIDATION_FAILED: --user must be an e-mail address/],
      // The identity provider and IMAP start, SMTP cannot: neither may keep the process up.
      [['--oauth', '--idp-port', '0', '--imap-port', '0', '--smtp-port', busyPort], /^error: listen EADDRINUSE/],
    ];
    try {
      for (const [args, expected] of cases) {
        const result = await runCli(['harness', ...args, '--dir', join(dir, 'refused')], {}, PROJECT_ROOT, 30_000);
        const what = `${args.join(' ')}: ${result.stderr}`;
        assert.ok(result.code !== null && result.code !== 0, `exits non-zero promptly: ${what}`);
        assert.match(result.stderr, expected, what);
        assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${what}`);
      }
    } finally {
      busy.close();
    }
  });
});
