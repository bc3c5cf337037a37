/**
 * After the last test, the run must end by itself (mocha runs without --exit, so a server, socket,
 * timer or child process a test left behind keeps it alive). A CI run that hangs there lands
 * nothing, so after a grace period this names what is still open, on stderr, and ends the process
 * with mocha's own exit code (mocha sets it in its 'exit' listener).
 */
import type { ChildProcess } from 'node:child_process';
import { Server } from 'node:net';

/** [30000] ms after the last test; MAILROOM_TEST_EXIT_GRACE_MS shortens it (a run of a few files). */
const GRACE_MS = Number(process.env.MAILROOM_TEST_EXIT_GRACE_MS ?? 30_000);

const origin = Symbol('listenedFrom');

/**
 * Remembers where each server of the run started listening (the test's and the project's frames
 * of the stack), so that one left open is named by the code that opened it.
 */
export function traceServerOrigins(): void {
  const listen = Server.prototype.listen as (...args: unknown[]) => Server;
  Server.prototype.listen = function (this: Server & { [origin]?: string }, ...args: unknown[]) {
    this[origin] = (new Error().stack ?? '')
      .split('\n')
      .filter((line) => /\/(test|src|faults|bench)\//.test(line) && !line.includes('exit-watchdog'))
      .slice(0, 4)
      .map((line) => line.trim())
      .join(' < ');
    return listen.apply(this, args);
  } as typeof Server.prototype.listen;
}

interface HandleLike {
  constructor?: { name?: string };
}

function describe(handle: HandleLike): string {
  const kind = handle.constructor?.name ?? 'unknown';
  if (kind === 'ChildProcess') {
    const child = handle as unknown as ChildProcess;
    return `child process ${child.pid ?? '?'}: ${child.spawnargs.join(' ')}`;
  }
  if (kind === 'Server') {
    const server = handle as unknown as Server & { [origin]?: string };
    const address = server.address();
    const where = typeof address === 'string' ? address : `${address?.address ?? '?'}:${address?.port ?? '?'}`;
    return `server ${where}${server[origin] ? `, listening since ${server[origin]}` : ''}`;
  }
  if (kind === 'Socket' || kind === 'TLSSocket') {
    const socket = handle as unknown as {
      localPort?: number;
      remoteAddress?: string;
      remotePort?: number;
      _type?: string;
      fd?: number;
    };
    if (socket.remotePort !== undefined) {
      return `${kind} :${socket.localPort ?? '?'} -> ${socket.remoteAddress ?? '?'}:${socket.remotePort}`;
    }
    return `${kind} (pipe or stdio${socket.fd !== undefined ? ` fd ${socket.fd}` : ''})`;
  }
  return kind;
}

/** Starts the grace period; the timer does not itself keep the process alive. */
export function startExitWatchdog(): void {
  const timer = setTimeout(() => {
    const getHandles = (process as unknown as { _getActiveHandles?: () => HandleLike[] })._getActiveHandles;
    const handles = getHandles ? getHandles.call(process).map(describe) : [];
    process.stderr.write(
      `\nThe test run did not end ${GRACE_MS / 1000} s after its last test; still open:\n` +
        `  resources: ${process.getActiveResourcesInfo().join(', ')}\n` +
        handles.map((line) => `  ${line}\n`).join('') +
        'Ending it now (a test did not clean up what it started).\n',
    );
    process.exit();
  }, GRACE_MS);
  timer.unref();
}
