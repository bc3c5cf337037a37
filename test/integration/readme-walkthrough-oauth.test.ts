import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, type Config } from '../../src/config/config.js';
import { startLocalHarness, type LocalHarness } from '../../src/harness/local-harness.js';
import { Engine } from '../../src/main.js';
import { createTestDatabase, isPostgresReachable, quietLogger } from '../support/database.js';
import { freePort, PROJECT_ROOT } from '../support/processes.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON in tests

/**
 * The README's OAuth walkthrough ("Try it on your machine"), its commands run as written against
 * the harness its first command starts and the engine its second starts (their ports instead of
 * the fixed ones); the restart between the steps is the engine's, done here.
 */
describe('README OAuth walkthrough (harness --oauth, whole engine)', function () {
  this.timeout(180_000);
  let dir: string;
  let harness: LocalHarness | undefined;
  let engine: Engine | undefined;
  let hook: Server | undefined;

  after(async () => {
    hook?.close();
    await engine?.stop();
    await harness?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs its commands as written: sign-in on the page, COMPLETE, mail, restart, revoke, REAUTH_REQUIRED, sign in again', async () => {
    const readme = await readFile(join(PROJECT_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('### Try it on your machine'),
      readme.indexOf('### How it works', readme.indexOf('### Try it on your machine')),
    );
    assert.ok(section.length > 1000, 'the section is there');
    const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    const [first, second, ...rest] = blocks;

    // 1. The harness, with the README's accounts.
    assert.match(first ?? '', /^npm run mailroom -- harness --oauth( --user \S+)+\n$/);
    const users = [...(first ?? '').matchAll(/--user (\S+)/g)].map((m) => m[1] as string);
    dir = await mkdtemp(join(tmpdir(), 'mailroom-readme-oauth-'));
    const cwd = join(dir, 'clone');
    await mkdir(join(cwd, 'data'), { recursive: true });
    harness = await startLocalHarness({
      imapPort: 0,
      smtpPort: 0,
      users,
      password: 'support',
      oauth: { port: 0, dir: join(cwd, 'data', 'harness') },
    });
    const idp = harness.idp;
    assert.ok(idp);
    // What it prints is what the README says to run next.
    const printed = harness.describe();
    const engineLine = /^(MAILROOM_OAUTH_CA_FILE=\S+) (MAILROOM_OAUTH_ALLOW_PRIVATE=\S+) npm start\n$/.exec(
      second ?? '',
    );
    assert.ok(engineLine, second);
    assert.ok(printed.includes(`MAILROOM_OAUTH_CA_FILE=${join(cwd, 'data', 'harness', 'idp-ca.pem')}`));
    assert.ok(printed.includes(engineLine[2] as string), 'the same address setting');

    // 2. The engine with the README's settings (the CA path relative to the clone, as written).
    const token = 'readme-oauth-token';
    await writeFile(join(cwd, 'data', 'api-token'), `${token}\n`);
    const port = await freePort();
    const settings = Object.fromEntries(engineLine.slice(1).map((s) => s.split('=', 2) as [string, string]));
    const config: Config = loadConfig(
      {
        ...((await isPostgresReachable()) && { MAILROOM_DATABASE_URL: await createTestDatabase() }),
        MAILROOM_SECRET_KEY: randomBytes(32).toString('base64'),
        MAILROOM_API_TOKEN: token,
        MAILROOM_HTTP_PORT: String(port),
        MAILROOM_SPOOL_DIR: join(dir, 'spool'),
        MAILROOM_TEMPLATES_DIR: join(PROJECT_ROOT, 'templates'),
        ...settings,
      },
      cwd,
    );
    engine = new Engine(config, quietLogger);
    await engine.start();

    // The server body of the README, of its example file and of the harness (default ports) agree.
    const readmeBody = JSON.parse(
      /-d '(\{\n {2}"name": "OAuth mailbox"[\s\S]*?\n\})'/.exec(section)?.[1] ?? '{}',
    ) as Obj;
    const example = JSON.parse(await readFile(join(PROJECT_ROOT, 'examples', 'server-oauth.json'), 'utf8')) as Obj;
    assert.deepEqual(readmeBody, example);
    const printedBody = JSON.stringify(harness.oauthServerBody())
      .replaceAll(`"port":${harness.imap.port}`, '"port":1143')
      .replaceAll(`"port":${harness.smtp.port}`, '"port":2525')
      .replaceAll(idp.url, 'https://127.0.0.1:8443');
    assert.deepEqual(JSON.parse(printedBody), example);

    // The restart between the steps: the person's Ctrl-C and start again, here through a hook.
    hook = createServer((req, res) => {
      void (async () => {
        await engine?.stop();
        engine = new Engine(config, quietLogger);
        await engine.start();
        res.end('restarted\n');
      })().catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
    hook.listen(0, '127.0.0.1');
    await once(hook, 'listening');
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/restart`;
    const restartAt = rest.findIndex((b) => /after the restart/.test(b));
    assert.ok(restartAt > 0, 'the restart step');
    const script = rest
      .map((b, i) => (i === restartAt ? `curl -sf -X POST ${hookUrl} >/dev/null\n${b}` : b))
      .join('\n')
      .replaceAll('http://127.0.0.1:8025', `http://127.0.0.1:${port}`)
      .replaceAll('"port": 1143', `"port": ${harness.imap.port}`)
      .replaceAll('"port": 2525', `"port": ${harness.smtp.port}`)
      .replaceAll('SMTP("127.0.0.1", 2525)', `SMTP("127.0.0.1", ${harness.smtp.port})`)
      .replaceAll('https://127.0.0.1:8443', idp.url);
    const commands = script.split('\n').filter((l) => !l.trimStart().startsWith('#'));
    assert.ok(!commands.some((l) => /\b(8025|1143|2525|8443)\b/.test(l.replace(/#.*$/, ''))), 'every port replaced');

    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], { cwd, timeout: 150_000 });
    const lines = stdout.split('\n');
    assert.equal(lines[0], 'INCOMPLETE', stdout);
    assert.match(stdout, new RegExp(`"verificationUri": "${idp.url}/devicelogin"`));
    assert.match(stdout, /You have signed in to app mailroom-harness as office@example\.com/);
    assert.ok(lines.includes('{"status":"COMPLETE","account":"office@example.com"}'), stdout);
    assert.ok(lines.includes('Signed in with OAuth'), 'the message was read over XOAUTH2');
    const revokedAt = lines.findIndex((l) => /^Revoked office@example\.com's sign-in/.test(l));
    assert.ok(revokedAt > 0, stdout);
    assert.equal(lines[revokedAt - 1], 'COMPLETE', 'after the restart, before the revocation');
    assert.match(lines[revokedAt + 1] ?? '', /^\{"status":"REAUTH_REQUIRED","error":".+"\}$/);
    assert.equal(lines.filter((l) => /You have signed in/.test(l)).length, 2);
    assert.equal(lines.filter((l) => l !== '').at(-1), 'COMPLETE', 'signed in again');
  });
});
