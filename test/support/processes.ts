import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI_ENTRY = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));
/** The CLI of the tsc build (`npm run build`). */
const BUILT_CLI_ENTRY = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url));
/** tsx's loader by absolute URL, so a child in another working directory finds it. */
const TSX_LOADER = import.meta.resolve('tsx');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the `mailroom` CLI from source (through tsx) and collects its output. With `killAfterMs`,
 * a command still running then is killed (exit code null): one that hangs fails its test instead
 * of stalling the run.
 */
export function runCli(
  args: string[],
  env: Record<string, string>,
  cwd = PROJECT_ROOT,
  killAfterMs?: number,
): Promise<RunResult> {
  return runScript(CLI_ENTRY, args, env, cwd, killAfterMs);
}

/**
 * Runs a TypeScript file through tsx as a process of its own and collects its output (a test's
 * embedded database is opened that way: PGlite is one instance per process).
 */
export async function runScript(
  file: string,
  args: string[],
  env: Record<string, string> = {},
  cwd = PROJECT_ROOT,
  killAfterMs?: number,
): Promise<RunResult> {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, file, ...args], {
    cwd,
    env: { ...process.env, MAILROOM_LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(killAfterMs !== undefined && { timeout: killAfterMs, killSignal: 'SIGKILL' as const }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** Starts `mailroom start` as a child process; output is collected. */
export function startEngineProcess(
  env: Record<string, string>,
  cwd: string,
  options: { built?: boolean } = {},
): { child: ChildProcess; output: () => string } {
  // MAILROOM_ENGINE_NODE_ARGS: extra node flags for the engine process (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
  const nodeArgs = (process.env.MAILROOM_ENGINE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // `built`: the tsc build, as `npm start` runs it (`npm run build` first); else the sources through tsx.
  const entry = options.built ? [BUILT_CLI_ENTRY] : ['--import', TSX_LOADER, CLI_ENTRY];
  const child = spawn(process.execPath, [...nodeArgs, ...entry, 'start'], {
    cwd,
    env: { ...process.env, MAILROOM_LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

/** An engine process started as one instance of several sharing a database. */
export interface EngineInstance {
  name: string;
  port: number;
  child: ChildProcess;
  output: () => string;
}

/**
 * Starts `mailroom start` as instance `name` (its MAILROOM_INSTANCE_ID) with `env`, on a free HTTP
 * port, with its data and spool folders and working directory under `dir/name`.
 */
export async function startEngineInstance(
  name: string,
  env: Record<string, string>,
  dir: string,
  options: { built?: boolean } = {},
): Promise<EngineInstance> {
  const port = await freePort();
  const home = join(dir, name);
  await mkdir(home, { recursive: true });
  const { child, output } = startEngineProcess(
    {
      ...env,
      MAILROOM_INSTANCE_ID: name,
      MAILROOM_HTTP_PORT: String(port),
      MAILROOM_DATA_DIR: join(home, 'data'),
      MAILROOM_SPOOL_DIR: join(home, 'spool'),
    },
    home,
    options,
  );
  return { name, port, child, output };
}

/** Polls `url` until it answers 200, or fails after `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null)
      throw new Error(`process exited with ${child.exitCode} before ${url} answered`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
