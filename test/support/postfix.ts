/**
 * A private Postfix 3.7 for integration tests, run from Debian's package unpacked into
 * MAILROOM_TEST_SERVERS_DIR (see cyrus.ts; installing `postfix` would make it the machine's MTA).
 * Its own config_directory, queue and data directories in a temp dir; processes run as `nobody`;
 * listening on loopback only: a submission port (STARTTLS required, SASL PLAIN/LOGIN against a
 * private sasldb through Cyrus SASL, relaying only for logged-in clients) and everything relayed
 * to `relayhost` (a loopback smtp-server in the tests):
 *
 *   const postfix = await startPostfix({ relayPort: sink.port, users, tls });
 *   // submission on postfix.host:postfix.submissionPort; its log: await postfix.readLog()
 *   await postfix.close();
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, testServersDir, unpackedEnv } from './cyrus.js';

/** Postfix's unprivileged user (mail_owner) and the group of its setgid commands. */
const MAIL_OWNER = 'nobody';
const MAIL_OWNER_UID = 65534;
const SETGID_GROUP = 'mail';
/** The SASL realm users are made in (smtpd_sasl_local_domain). */
const REALM = 'mailroom-test';
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

export interface PostfixInstance {
  readonly host: '127.0.0.1';
  /** Submission: STARTTLS required, then AUTH; only logged-in clients may relay. */
  readonly submissionPort: number;
  readonly dir: string;
  /** Postfix's log (maillog_file) so far. */
  readLog(): Promise<string>;
  /** Stops Postfix (`postfix stop`) and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

/** Why Postfix cannot run here (not unpacked, or not root), or null. */
export function postfixMissing(): string | null {
  if (!existsSync(path.join(testServersDir(), 'usr/lib/postfix/sbin/master'))) {
    return `Postfix is not unpacked in ${testServersDir()} (run test/support/unpack-test-servers.sh as root)`;
  }
  if (process.getuid?.() !== 0) return 'a private Postfix instance must be started as root';
  return null;
}

export async function startPostfix(options: {
  /** Where Postfix relays everything (loopback). */
  relayPort: number;
  users: Array<{ user: string; password: string }>;
  tls: { cert: string; key: string };
}): Promise<PostfixInstance> {
  const missing = postfixMissing();
  if (missing) throw new Error(missing);
  const root = testServersDir();
  const postfix = path.join(root, 'usr/sbin/postfix');
  const env = unpackedEnv();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailroom-postfix-'));
  await chmod(dir, 0o755);
  let child: ChildProcess | undefined;
  try {
    for (const sub of ['queue', 'data', 'sasl']) await mkdir(path.join(dir, sub));
    await chown(path.join(dir, 'data'), MAIL_OWNER_UID, 0);
    const port = await freePort();
    await writeFile(path.join(dir, 'server.pem'), options.tls.cert, { mode: 0o644 });
    await writeFile(path.join(dir, 'server.key'), options.tls.key, { mode: 0o600 });
    await writeFile(
      path.join(dir, 'main.cf'),
      [
        'compatibility_level = 3.6',
        `queue_directory = ${dir}/queue`,
        `data_directory = ${dir}/data`,
        `daemon_directory = ${root}/usr/lib/postfix/sbin`,
        `command_directory = ${root}/usr/sbin`,
        `shlib_directory = ${root}/usr/lib/postfix`,
        `meta_directory = ${root}/etc/postfix`,
        // The unpacked binaries find their libraries (Postfix passes on only what it is told to).
        `import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME LD_LIBRARY_PATH=${env.LD_LIBRARY_PATH}`,
        `mail_owner = ${MAIL_OWNER}`,
        'default_privs = daemon',
        `setgid_group = ${SETGID_GROUP}`,
        'inet_interfaces = 127.0.0.1',
        'inet_protocols = ipv4',
        'myhostname = mx.mailroom-test.example',
        'mydestination =',
        'local_recipient_maps =',
        'alias_maps =',
        'alias_database =',
        `relayhost = [127.0.0.1]:${options.relayPort}`,
        'smtp_tls_security_level = none',
        `maillog_file_prefixes = ${dir}`,
        `maillog_file = ${dir}/maillog`,
        `smtpd_tls_cert_file = ${dir}/server.pem`,
        `smtpd_tls_key_file = ${dir}/server.key`,
        'smtpd_sasl_type = cyrus',
        'smtpd_sasl_path = smtpd',
        `smtpd_sasl_local_domain = ${REALM}`,
        `cyrus_sasl_config_path = ${dir}/sasl`,
        'smtpd_relay_restrictions = permit_sasl_authenticated, reject',
        'biff = no',
        '',
      ].join('\n'),
    );
    // Submission as on port 587: STARTTLS required (encrypt), AUTH only after it.
    const daemons = [
      'pickup unix n - n 60 1 pickup',
      'cleanup unix n - n - 0 cleanup',
      'qmgr unix n - n 300 1 qmgr',
      'rewrite unix - - n - - trivial-rewrite',
      'bounce unix - - n - 0 bounce',
      'defer unix - - n - 0 bounce',
      'trace unix - - n - 0 bounce',
      'verify unix - - n - 1 verify',
      'flush unix n - n 1000? 0 flush',
      'proxymap unix - - n - - proxymap',
      'smtp unix - - n - - smtp',
      'relay unix - - n - - smtp',
      'error unix - - n - - error',
      'retry unix - - n - - error',
      'discard unix - - n - - discard',
      'anvil unix - - n - 1 anvil',
      'scache unix - - n - 1 scache',
      'postlog unix-dgram n - n - 1 postlogd',
      'tlsmgr unix - - n 1000? 1 tlsmgr',
      'showq unix n - n - - showq',
    ];
    await writeFile(
      path.join(dir, 'master.cf'),
      [
        `127.0.0.1:${port} inet n - n - - smtpd -o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=yes`,
        ...daemons,
        '',
      ].join('\n'),
    );
    await writeFile(
      path.join(dir, 'sasl/smtpd.conf'),
      `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: ${dir}/sasldb2\nmech_list: PLAIN LOGIN\n`,
    );
    const sasldb = path.join(dir, 'sasldb2');
    for (const { user, password } of options.users) {
      const run = promisify(execFile)(
        path.join(root, 'usr/sbin/saslpasswd2'),
        ['-f', sasldb, '-p', '-c', '-u', REALM, user],
        {
          env,
        },
      );
      run.child.stdin?.end(password);
      await run;
    }
    if (options.users.length > 0) await chown(sasldb, MAIL_OWNER_UID, 0);

    // `check` makes the queue directories with their owners; `start-fg` keeps the master in front.
    await promisify(execFile)(postfix, ['-c', dir, 'check'], { env }).catch((err: unknown) => {
      throw new Error(`postfix check failed (see ${dir}/maillog): ${(err as Error).message}`);
    });
    child = spawn(postfix, ['-c', dir, 'start-fg'], { stdio: ['ignore', 'ignore', 'pipe'], env });
    const running = child;
    let stderr = '';
    running.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => running.once('exit', (code) => resolve(code)));
    running.once('error', () => undefined);
    const failure = exited.then(async (code) => {
      const log = await readFile(path.join(dir, 'maillog'), 'utf8').catch(() => '');
      throw new Error(`postfix exited (code ${code}) before greeting: ${stderr.trim()} ${log.trim().slice(-2000)}`);
    });
    await Promise.race([waitForGreeting(port), failure]);
    failure.catch(() => undefined);

    let closing: Promise<void> | undefined;
    return {
      host: '127.0.0.1',
      submissionPort: port,
      dir,
      readLog: () => readFile(path.join(dir, 'maillog'), 'utf8').catch(() => ''),
      close: () => (closing ??= stop(postfix, dir, env, running, exited)),
    };
  } catch (err) {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function stop(
  postfix: string,
  dir: string,
  env: NodeJS.ProcessEnv,
  child: ChildProcess,
  exited: Promise<unknown>,
): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    await promisify(execFile)(postfix, ['-c', dir, 'stop'], { env }).catch(() => child.kill('SIGTERM'));
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  }
  await rm(dir, { recursive: true, force: true });
}

async function waitForGreeting(port: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (await greets(port)) return;
    if (Date.now() > deadline) throw new Error(`postfix did not greet on port ${port} within ${START_TIMEOUT_MS} ms`);
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
    socket.once('data', (data) => done(String(data).startsWith('220')));
  });
}
