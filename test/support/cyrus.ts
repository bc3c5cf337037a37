/**
 * A private Cyrus IMAP 3.6 server for integration tests, run from Debian's packages unpacked (not
 * installed: `cyrus-imapd` conflicts with `dovecot-imapd`, which the other tests need) into
 * MAILROOM_TEST_SERVERS_DIR (default /opt/mailroom-test-servers; `test/support/unpack-test-servers.sh`
 * fills it, `.ci/run` calls it). Started as root from a temp dir with a private imapd.conf and
 * cyrus.conf, its processes run as `nobody`; logins are SASL PLAIN/LOGIN against a private sasldb:
 *
 *   const cyrus = await startCyrus({ users: [{ user: 'agent', password: 'secret' }], tls });
 *   // IMAP on cyrus.host:cyrus.port (STARTTLS offered with `tls`), INBOX created at first login
 *   await cyrus.close();
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/** Where the unpacked packages live (a root of `dpkg -x`). */
export function testServersDir(): string {
  return process.env.MAILROOM_TEST_SERVERS_DIR ?? '/opt/mailroom-test-servers';
}

/** uid/gid Cyrus runs as (`cyrus_user: nobody`), owner of its directories. */
const CYRUS_UID = 65534;
const CYRUS_GID = 65534;
/** The SASL realm the users are made in: Cyrus asks for its `servername`. */
const REALM = 'mailroom-test';
/** How long to wait for the IMAP greeting after starting, in milliseconds. */
const START_TIMEOUT_MS = 20_000;
/** How long to wait for Cyrus to exit after SIGTERM before SIGKILL, in milliseconds. */
const STOP_TIMEOUT_MS = 5_000;

export interface CyrusUser {
  user: string;
  password: string;
}

export interface CyrusInstance {
  readonly host: '127.0.0.1';
  /** IMAP port (loopback only); STARTTLS offered when started with `tls`. */
  readonly port: number;
  readonly dir: string;
  /** Stops Cyrus and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

/** Why Cyrus cannot run here (not unpacked, or not root), or null. */
export function cyrusMissing(): string | null {
  if (!existsSync(path.join(testServersDir(), 'usr/lib/cyrus/bin/master'))) {
    return `Cyrus IMAP is not unpacked in ${testServersDir()} (run test/support/unpack-test-servers.sh as root)`;
  }
  if (process.getuid?.() !== 0) return 'a private Cyrus instance must be started as root';
  return null;
}

/** The environment the unpacked binaries run in: their libraries first. */
export function unpackedEnv(): NodeJS.ProcessEnv {
  const root = testServersDir();
  const libs = [`${root}/usr/lib/x86_64-linux-gnu`, `${root}/lib/x86_64-linux-gnu`, `${root}/usr/lib/postfix`];
  return { ...process.env, LD_LIBRARY_PATH: [...libs, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
}

/** Starts a private Cyrus instance and resolves once its IMAP port greets. */
export async function startCyrus(options: {
  users: CyrusUser[];
  tls?: { cert: string; key: string };
}): Promise<CyrusInstance> {
  const missing = cyrusMissing();
  if (missing) throw new Error(missing);
  const root = testServersDir();
  const bin = (name: string): string => path.join(root, 'usr/lib/cyrus/bin', name);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailroom-cyrus-'));
  await chmod(dir, 0o755);
  let child: ChildProcess | undefined;
  try {
    for (const sub of ['conf', 'spool', 'run']) await mkdir(path.join(dir, sub));
    const port = await freePort();
    const config = path.join(dir, 'imapd.conf');
    const lines = [
      `configdirectory: ${dir}/conf`,
      `partition-default: ${dir}/spool`,
      'cyrus_user: nobody',
      `servername: ${REALM}`,
      'sasl_pwcheck_method: auxprop',
      'sasl_auxprop_plugin: sasldb',
      `sasl_sasldb_path: ${dir}/sasldb2`,
      'sasl_mech_list: PLAIN LOGIN',
      // Logins in plain text are refused unless TLS is up (no TLS: a test without it).
      `allowplaintext: ${options.tls ? 'no' : 'yes'}`,
      'autocreate_quota: 0',
      `idlesocket: ${dir}/run/idle`,
      `lmtpsocket: ${dir}/run/lmtp`,
      `notifysocket: ${dir}/run/notify`,
    ];
    if (options.tls) {
      await writeFile(path.join(dir, 'server.pem'), options.tls.cert, { mode: 0o644 });
      await writeFile(path.join(dir, 'server.key'), options.tls.key, { mode: 0o600 });
      lines.push(`tls_server_cert: ${dir}/server.pem`, `tls_server_key: ${dir}/server.key`);
    }
    await writeFile(config, lines.join('\n') + '\n', { mode: 0o644 });
    await writeFile(
      path.join(dir, 'cyrus.conf'),
      [
        'START {',
        `  recover cmd="${bin('ctl_cyrusdb')} -C ${config} -r"`,
        '}',
        'SERVICES {',
        `  imap cmd="${bin('imapd')} -C ${config}" listen="127.0.0.1:${port}" prefork=0`,
        '}',
        'EVENTS {',
        '}',
        'DAEMON {',
        '}',
        '',
      ].join('\n'),
      { mode: 0o644 },
    );
    for (const { user, password } of options.users) {
      await saslPassword(path.join(dir, 'sasldb2'), user, password);
    }
    await chownTree(dir);

    child = spawn(
      bin('master'),
      ['-C', config, '-M', path.join(dir, 'cyrus.conf'), '-D', '-p', path.join(dir, 'run/master.pid')],
      { stdio: ['ignore', 'ignore', 'pipe'], env: unpackedEnv() },
    );
    const running = child;
    let stderr = '';
    running.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => running.once('exit', (code) => resolve(code)));
    running.once('error', () => undefined);
    const failure = exited.then((code) => {
      throw new Error(`cyrus master exited (code ${code}) before greeting: ${stderr.trim()}`);
    });
    await Promise.race([waitForGreeting(port, START_TIMEOUT_MS), failure]);
    failure.catch(() => undefined);

    let closing: Promise<void> | undefined;
    return {
      host: '127.0.0.1',
      port,
      dir,
      close: () => (closing ??= stop(running, exited, dir)),
    };
  } catch (err) {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function saslPassword(db: string, user: string, password: string): Promise<void> {
  const run = promisify(execFile);
  const child = run(path.join(testServersDir(), 'usr/sbin/saslpasswd2'), ['-f', db, '-p', '-c', '-u', REALM, user], {
    env: unpackedEnv(),
  });
  child.child.stdin?.end(password);
  await child;
}

async function chownTree(dir: string): Promise<void> {
  await promisify(execFile)('chown', ['-R', `${CYRUS_UID}:${CYRUS_GID}`, dir]);
  await chown(dir, CYRUS_UID, CYRUS_GID);
}

async function stop(child: ChildProcess, exited: Promise<unknown>, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  }
  await rm(dir, { recursive: true, force: true });
}

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
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

async function waitForGreeting(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await greets(port)) return;
    if (Date.now() > deadline) throw new Error(`cyrus did not greet on port ${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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
