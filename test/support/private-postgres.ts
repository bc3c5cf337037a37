import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { addCleanup } from './cleanup.js';
import { freePort } from './processes.js';

const run = promisify(execFile);

/** Debian's PostgreSQL binaries (the server refuses to run as root: started as `postgres`). */
const BIN = '/usr/lib/postgresql/15/bin';

/**
 * A PostgreSQL cluster of the test's own on a loopback port, that the test can stop and start
 * again (a database outage that is the real thing: connections cut with 57P01, new ones refused).
 */
export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication). */
  readonly url: string;
  /** Fast shutdown: sessions are terminated, the port stops listening. Resolves once it is down. */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
}

/** Why a private cluster cannot run here (no binaries, not root), or null. */
export function privatePostgresMissing(): string | null {
  if (!existsSync(join(BIN, 'initdb'))) return `PostgreSQL server binaries not installed (${BIN})`;
  if (process.getuid?.() !== 0) return 'a private PostgreSQL cluster is started as root (run as the postgres user)';
  return null;
}

/** Creates and starts a cluster (about 1.5 s); it is stopped and removed at the end of the run. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-pg-'));
  await chmod(dir, 0o755);
  const data = join(dir, 'data');
  const sockets = join(dir, 'run'); // its socket and its log
  const { uid, gid } = await postgresUser();
  await run('mkdir', ['-p', data, sockets]);
  await chown(data, uid, gid);
  await chown(sockets, uid, gid);
  const asPostgres = (cmd: string, args: string[]) => run('runuser', ['-u', 'postgres', '--', join(BIN, cmd), ...args]);
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  const port = await freePort();
  const options = `-p ${port} -k ${sockets} -c listen_addresses=127.0.0.1 -c fsync=off`;
  let running = false;
  const cluster: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      await asPostgres('pg_ctl', ['-D', data, '-w', '-l', join(sockets, 'log'), '-o', options, 'start']);
      running = true;
    },
    async stop() {
      await asPostgres('pg_ctl', ['-D', data, '-w', '-m', 'fast', 'stop']);
      running = false;
    },
  };
  addCleanup(async () => {
    if (running) await cluster.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  await cluster.start();
  return cluster;
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}
