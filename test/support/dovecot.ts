/**
 * A private Dovecot 2.3 IMAP server for integration tests, started as root from a temp dir
 * with the config in test/fixtures/dovecot/dovecot.conf.template:
 *
 *   const binary = dovecotBinary(); // undefined: skip ("apt-get install dovecot-imapd")
 *   const dovecot = await startDovecot({ users: [{ user: 'agent', password: 'secret' }] });
 *   // IMAP on dovecot.host:dovecot.port, cleartext LOGIN/AUTH PLAIN, no TLS
 *   await dovecot.close();
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const TEMPLATE = new URL('../fixtures/dovecot/dovecot.conf.template', import.meta.url);
const BINARY_PATHS = ['/usr/sbin/dovecot'];
/** uid/gid the mailboxes belong to (static userdb uid=nobody gid=nogroup). */
const MAIL_UID = 65534;
const MAIL_GID = 65534;
/** How long to wait for the IMAP greeting after starting, in milliseconds. */
const START_TIMEOUT_MS = 15_000;
/** How long to wait for Dovecot to exit after SIGTERM before SIGKILL, in milliseconds. */
const STOP_TIMEOUT_MS = 5_000;
/** Slack after the second boundary before a new passwd-file entry is usable, in milliseconds. */
const PASSWD_SYNC_MARGIN_MS = 20;

export interface DovecotUser {
  user: string;
  password: string;
}

export interface StartDovecotOptions {
  /** Accounts for the passwd-file passdb (plaintext passwords). [users=[]] */
  users?: DovecotUser[];
  /** Path of the dovecot binary. [binary=dovecotBinary()] */
  binary?: string;
  /**
   * Also accept XOAUTH2 and OAUTHBEARER, checking each token at this RFC 7662 introspection URL
   * (plain HTTP, e.g. `FakeIdp.introspectionUrl`). [oauth2IntrospectionUrl=undefined: passwords only]
   */
  oauth2IntrospectionUrl?: string;
  /** Offer STARTTLS on the IMAP port with this certificate and key (PEM). [tls=undefined: no TLS] */
  tls?: { cert: string; key: string };
}

export interface DovecotInstance {
  readonly available: true;
  readonly host: '127.0.0.1';
  /** IMAP port (cleartext, loopback only). */
  readonly port: number;
  /** The temp dir holding config, sockets, state, log and mail. Removed by close(). */
  readonly dir: string;
  /**
   * Adds an account. Resolves once Dovecot will see it: it re-reads the passwd-file on a
   * login at most once per wall-clock second, so this waits for the next second to start.
   */
  addUser(user: DovecotUser): Promise<void>;
  /** The instance's log so far (useful in an assertion message). */
  readLog(): Promise<string>;
  /**
   * Stops the server (SIGTERM, as `systemctl stop dovecot` does), keeping its mail, config and
   * port: clients see their connections end and new ones refused until `start()`.
   */
  stop(): Promise<void>;
  /** Starts it again after `stop()` on the same port; resolves once it greets. No-op while running. */
  start(): Promise<void>;
  /** Stops Dovecot and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

/** Path of the installed dovecot binary, or undefined (install: apt-get install dovecot-imapd). */
export function dovecotBinary(): string | undefined {
  return BINARY_PATHS.find((candidate) => existsSync(candidate));
}

/** Starts a private Dovecot instance and resolves once its IMAP port greets. */
export async function startDovecot(options: StartDovecotOptions = {}): Promise<DovecotInstance> {
  const binary = options.binary ?? dovecotBinary();
  if (!binary) throw new Error('dovecot is not installed (apt-get install dovecot-imapd)');
  if (process.getuid?.() !== 0) throw new Error('the private Dovecot instance must be started as root');
  await assertSupportedVersion(binary);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailroom-dovecot-'));
  // dovecot's unprivileged processes (auth as `dovecot`, imap as `nobody`) traverse it
  await chmod(dir, 0o755);
  let child: ChildProcess | undefined;
  try {
    const paths = {
      config: path.join(dir, 'dovecot.conf'),
      base: path.join(dir, 'run'),
      state: path.join(dir, 'state'),
      log: path.join(dir, 'dovecot.log'),
      passwd: path.join(dir, 'passwd'),
      mail: path.join(dir, 'mail'),
    };
    await mkdir(paths.state);
    await mkdir(paths.mail);
    await chown(paths.mail, MAIL_UID, MAIL_GID);
    await writeFile(paths.passwd, (options.users ?? []).map(passwdLine).join(''), { mode: 0o644 });

    const port = await freePort();
    const config = fillTemplate(await readFile(TEMPLATE, 'utf8'), {
      INSTANCE_NAME: path.basename(dir),
      BASE_DIR: paths.base,
      STATE_DIR: paths.state,
      LOG_PATH: paths.log,
      IMAP_PORT: String(port),
      PASSWD_FILE: paths.passwd,
      MAIL_DIR: paths.mail,
    });
    let ssl = 'ssl = no';
    if (options.tls) {
      const cert = path.join(dir, 'server.pem');
      const key = path.join(dir, 'server.key');
      await writeFile(cert, options.tls.cert, { mode: 0o644 });
      await writeFile(key, options.tls.key, { mode: 0o600 });
      ssl = `ssl = yes\nssl_cert = <${cert}\nssl_key = <${key}`;
    }
    const withSsl = config.replace(/^ssl = no$/m, ssl);
    await writeFile(
      paths.config,
      options.oauth2IntrospectionUrl ? withSsl + (await oauth2Passdb(dir, options.oauth2IntrospectionUrl)) : withSsl,
    );

    const launch = async (): Promise<{ child: ChildProcess; exited: Promise<number | null> }> => {
      const running = spawn(binary, ['-F', '-c', paths.config], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = running;
      let stderr = '';
      running.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => running.once('exit', (code) => resolve(code)));
      running.once('error', () => undefined); // reported through 'exit' / the greeting timeout

      const failure = exited.then(async (code) => {
        const log = await readFile(paths.log, 'utf8').catch(() => '');
        throw new Error(`dovecot exited (code ${code}) before greeting: ${stderr.trim()} ${log.trim()}`);
      });
      await Promise.race([waitForGreeting(port, START_TIMEOUT_MS), failure]);
      failure.catch(() => undefined); // exit after close() is expected
      return { child: running, exited };
    };
    let current: { child: ChildProcess; exited: Promise<number | null> } | undefined = await launch();

    let closing: Promise<void> | undefined;
    return {
      available: true,
      host: '127.0.0.1',
      port,
      dir,
      addUser: async (user) => {
        await appendFile(paths.passwd, passwdLine(user));
        await sleep(1_000 - (Date.now() % 1_000) + PASSWD_SYNC_MARGIN_MS);
      },
      readLog: () => readFile(paths.log, 'utf8').catch(() => ''),
      stop: async () => {
        if (!current || closing) return;
        const { child: running, exited } = current;
        current = undefined;
        await stop(running, exited);
      },
      start: async () => {
        if (current || closing) return;
        current = await launch();
      },
      close: () =>
        (closing ??= (async () => {
          if (current) await stop(current.child, current.exited);
          current = undefined;
          await rm(dir, { recursive: true, force: true });
        })()),
    };
  } catch (err) {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function stop(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

function passwdLine({ user, password }: DovecotUser): string {
  if (/[:\r\n]/.test(user) || /[:\r\n]/.test(password)) {
    throw new Error('dovecot test users may not contain ":" or line breaks');
  }
  return `${user}:{PLAIN}${password}::::::\n`;
}

function fillTemplate(template: string, values: Record<string, string>): string {
  // Only uncommented lines must be filled; commented examples may keep their placeholders.
  return template
    .split('\n')
    .map((line) => {
      if (line.trimStart().startsWith('#')) return line;
      const filled = line.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_match, key: string) => {
        const value = values[key];
        if (value === undefined) throw new Error(`dovecot template: no value for {{${key}}}`);
        return value;
      });
      return filled;
    })
    .join('\n');
}

async function assertSupportedVersion(binary: string): Promise<void> {
  const { stdout } = await promisify(execFile)(binary, ['--version']);
  const [major = 0, minor = 0] = stdout.trim().split(/[.\s]/).map(Number);
  if (major !== 2 || minor !== 3) {
    throw new Error(`test/fixtures/dovecot/dovecot.conf.template is written for Dovecot 2.3, found ${stdout.trim()}`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = address && typeof address === 'object' ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls until 127.0.0.1:port answers with an IMAP `* OK` greeting. */
async function waitForGreeting(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await greets(port)) return;
    if (Date.now() > deadline) throw new Error(`dovecot did not greet on port ${port} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => done(String(data).startsWith('* OK')));
  });
}

/** The oauth2 passdb (the commented example in the template), appended when tokens are wanted. */
async function oauth2Passdb(dir: string, introspectionUrl: string): Promise<string> {
  const args = path.join(dir, 'oauth2.conf.ext');
  await writeFile(
    args,
    [
      'introspection_mode = post',
      `introspection_url = ${introspectionUrl}`,
      'username_attribute = username',
      'active_attribute = active',
      'active_value = true',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  return [
    '',
    'auth_mechanisms = plain login xoauth2 oauthbearer',
    'passdb {',
    '  driver = oauth2',
    '  mechanisms = xoauth2 oauthbearer',
    `  args = ${args}`,
    '}',
    '',
  ].join('\n');
}
