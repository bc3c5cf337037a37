/**
 * Engine processes of the scale benchmark on one database: each with its own instance id, HTTP
 * port and folders; their `/metrics` read for the accounts idling, the database for the leases
 * each live instance holds. Also the process figures (RSS, CPU seconds) and the open-files limit
 * that thousands of IMAP sockets need.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Store } from '../../src/store/store.js';
import { addCleanup } from '../../test/support/cleanup.js';
import { startEngineInstance, type EngineInstance } from '../../test/support/processes.js';

export type { EngineInstance };

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** Resident set size of a process, MB. */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** CPU seconds (user + system) a process used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * Raises this process's open-files limit (soft and hard) to `needed` when it is lower: the fake
 * IMAP server here holds a socket per engine session (two per mailbox) and the engine processes
 * started afterwards inherit the limit. Needs root or a hard limit that allows it (`prlimit`,
 * util-linux); else fails naming `ulimit -n`.
 */
export async function raiseOpenFiles(needed: number): Promise<number> {
  const limits = await readFile('/proc/self/limits', 'utf8');
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1] ?? '0';
  if (soft === 'unlimited' || Number(soft) >= needed) return soft === 'unlimited' ? Infinity : Number(soft);
  const raised = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${needed}:${needed}`]);
  if (raised.status !== 0) {
    throw new Error(
      `${needed} open files needed (sockets on both sides), the limit is ${soft}: run with \`ulimit -n ${needed}\` ` +
        `or as root (${raised.stderr?.toString().trim() || raised.error?.message})`,
    );
  }
  return needed;
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** Starts engine instance `name` with `env` (database, key, token) in a folder of its own under `dir`. */
export async function startInstance(
  name: string,
  env: Record<string, string>,
  dir: string,
  built: boolean,
): Promise<EngineInstance> {
  const instance = await startEngineInstance(name, env, dir, { built });
  addCleanup(() => stopChild(instance.child));
  return instance;
}

/** Accounts whose watcher is in IDLE according to the instance's `/metrics` (0 while it does not answer). */
export async function idleCount(instance: EngineInstance, token: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${instance.port}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (res.status !== 200) return 0;
    return (await res.text())
      .split('\n')
      .filter((l) => l.startsWith('mailroom_imap_session_state{') && l.includes('state="idle"')).length;
  } catch {
    return 0;
  }
}

/** Leases held per live instance id (instances announced and not expired), from the database. */
export async function leasesByInstance(store: Store): Promise<Map<string, number>> {
  const rows = await store.query<{ instance: string; n: number }>(
    `SELECT i.instance_id AS instance, count(l.server_id)::int AS n
       FROM engine_instances i LEFT JOIN server_leases l ON l.owner = i.owner
      WHERE i.expires_at > now() GROUP BY i.instance_id`,
  );
  return new Map(rows.map((r) => [r.instance, Number(r.n)]));
}

/**
 * Whether `instances` share `total` servers evenly as the lease keeper sees it: together they
 * hold all of them, none more than its share (total ÷ instances, rounded up).
 */
export function evenShares(held: ReadonlyMap<string, number>, instances: readonly string[], total: number): boolean {
  const counts = instances.map((name) => held.get(name) ?? 0);
  const share = Math.ceil(total / instances.length);
  return counts.reduce((a, b) => a + b, 0) === total && counts.every((n) => n <= share);
}
