/**
 * What every fault run starts and stops: a PostgreSQL cluster of its own on a loopback port (that
 * the run can stop and start: test/support/private-postgres.ts), the engine as a child process
 * (`mailroom start` as it ships, from the build in dist/ that faults/run.ts makes first; the
 * sources through tsx with FAULTS_CODE=src), an HTTP client of its API that
 * counts answers by status and connection failures by code. Everything registers its stop in
 * test/support/cleanup.ts; `runFault` runs those cleanups whatever happens and makes sure the
 * process exits.
 */
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { addCleanup, runCleanups } from '../../test/support/cleanup.js';
import { dovecotBinary } from '../../test/support/dovecot.js';
import {
  privatePostgresMissing,
  startPrivatePostgres,
  type PrivatePostgres,
} from '../../test/support/private-postgres.js';
import { freePort, startEngineProcess, waitForHttp } from '../../test/support/processes.js';
import { emit, progress, type FaultResult } from './report.js';

/** Grace after the cleanups before the process is made to exit (a handle left open), ms. */
const EXIT_GRACE_MS = 5_000;
/** [10000] longest an API request of a run may take before it counts as `TIMEOUT`, ms. */
const REQUEST_TIMEOUT_MS = 10_000;
/** [180000] longest an engine process may take to answer /healthz after its start, ms (a busy machine). */
const ENGINE_START_MS = 180_000;
/** The engine processes run the build in dist/ (the runner builds it) unless FAULTS_CODE=src. */
const ENGINE_BUILT = process.env.FAULTS_ENGINE_CODE === 'dist';
export const API_TOKEN = 'faults-admin-token';

/** Why the fault runs cannot run here (root for Dovecot and PostgreSQL's own user), or null. */
export function missingRequirement(needs: { dovecot?: boolean } = {}): string | null {
  const postgres = privatePostgresMissing();
  if (postgres) return postgres;
  if (needs.dovecot && !dovecotBinary()) return 'dovecot not installed (apt-get install dovecot-imapd)';
  return null;
}

/**
 * Runs one fault: prints a skip line when a requirement is missing, else the run's result line;
 * runs the cleanups at the end and sets the exit code (1 on an error, or when the run failed).
 */
export function runFault(fault: string, needs: { dovecot?: boolean }, body: () => Promise<FaultResult>): void {
  void (async () => {
    let code = 0;
    try {
      const missing = missingRequirement(needs);
      if (missing) emit({ fault, skipped: missing });
      else {
        const result = await body();
        emit(result);
        if (!result.pass) code = 1;
      }
    } catch (err) {
      progress(fault, `failed: ${(err as Error).stack ?? String(err)}`);
      code = 1;
    } finally {
      await runCleanups();
    }
    process.exitCode = code;
    setTimeout(() => {
      progress(fault, 'a handle stayed open after the cleanups; exiting');
      process.exit(code);
    }, EXIT_GRACE_MS).unref();
  })();
}

/** A PostgreSQL cluster of the run's own, stopped and removed at the end. */
export async function privatePostgres(): Promise<PrivatePostgres> {
  return startPrivatePostgres();
}

/** A temp dir of the run's own, removed at the end. */
export async function workDir(fault: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `mailroom-faults-${fault}-`));
  addCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A query against the run's cluster (a client of its own per call: it may be stopped in between). */
export async function sql<T extends Record<string, unknown>>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The engine's environment for a run: its database, a fixed key and token, a quiet log. */
export function engineEnv(
  databaseUrl: string,
  dir: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    MAILROOM_DATABASE_URL: databaseUrl,
    MAILROOM_SECRET_KEY: SECRET_KEY,
    MAILROOM_API_TOKEN: API_TOKEN,
    MAILROOM_LOG_LEVEL: 'warn',
    MAILROOM_SPOOL_DIR: join(dir, 'spool'),
    MAILROOM_TEMPLATES_DIR: join(dir, 'templates'),
    MAILROOM_DATA_DIR: join(dir, 'data'),
    MAILROOM_INSTANCE_ID: 'faults',
    ...extra,
  };
}
const SECRET_KEY = randomBytes(32).toString('base64');

/** One engine process (`mailroom start`), its API on a port of its own. */
export class EngineProcess {
  private exitedAt: number | null = null;
  private exitCode: number | null = null;
  private exitSignal: NodeJS.Signals | null = null;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly output: () => string,
  ) {
    child.once('exit', (code, signal) => {
      this.exitedAt = Date.now();
      this.exitCode = code;
      this.exitSignal = signal;
    });
  }

  /** Starts `mailroom start` with `env` in `dir`; resolves once /healthz answers. */
  static async start(env: Record<string, string>, dir: string): Promise<EngineProcess> {
    const port = await freePort();
    const { child, output } = startEngineProcess({ ...env, MAILROOM_HTTP_PORT: String(port) }, dir, {
      built: ENGINE_BUILT,
    });
    const engine = new EngineProcess(child, port, output);
    addCleanup(() => engine.kill(), 'first');
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, ENGINE_START_MS, child).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${output().slice(-4000)}`);
    });
    return engine;
  }

  get alive(): boolean {
    return this.exitedAt === null;
  }

  /** How it ended, for the result line: null while it runs. */
  get exit(): { code: number | null; signal: string | null } | null {
    return this.exitedAt === null ? null : { code: this.exitCode, signal: this.exitSignal };
  }

  api(): Api {
    return new Api(`http://127.0.0.1:${this.port}`);
  }

  /** SIGKILL: no shutdown of any kind. Resolves once it is gone. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM and the engine's own graceful stop (SIGKILL after 20 s). */
  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
}

export type Json = Record<string, unknown>;

/** An answer of the API, or a failure to get one (`status` 0, `code` the connection error). */
export interface Answer {
  status: number;
  /** The error code of the body (`DATABASE_UNAVAILABLE`), or the connection failure (`ECONNREFUSED`, `TIMEOUT`). */
  code: string | null;
  body: Json;
}

/** The engine's HTTP API as an administrator calls it. */
export class Api {
  constructor(readonly origin: string) {}

  async call(method: string, path: string, body?: unknown): Promise<Answer> {
    try {
      const res = await fetch(`${this.origin}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${API_TOKEN}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      let parsed: Json = {};
      try {
        parsed = JSON.parse(text) as Json;
      } catch {
        parsed = { text };
      }
      const error = parsed.error as { code?: string } | undefined;
      return { status: res.status, code: error?.code ?? null, body: parsed };
    } catch (err) {
      return { status: 0, code: connectionFailure(err), body: {} };
    }
  }

  /** Like `call`, but anything other than `expected` throws (the set-up of a run). */
  async must(method: string, path: string, body: unknown, expected = [200, 201]): Promise<Json> {
    const answer = await this.call(method, path, body);
    if (!expected.includes(answer.status)) {
      throw new Error(`${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    }
    return answer.body;
  }

  /** A tenant, its id. */
  async tenant(name: string): Promise<string> {
    return (await this.must('POST', '/tenants', { name })).id as string;
  }

  /**
   * An account on `tenantId`: IMAP at `imap` (or none watched: disabled, port 1) and SMTP to the
   * relay on `smtpPort` of 127.0.0.1 without a login; `smtp` adds settings.
   */
  async server(
    tenantId: string,
    name: string,
    options: { user: string; password?: string; imapPort?: number; smtpPort: number; smtp?: Json },
  ): Promise<string> {
    const password = options.password ?? 'unused';
    return (
      await this.must('POST', `/tenants/${tenantId}/servers`, {
        name,
        enabled: options.imapPort !== undefined,
        imap: {
          host: '127.0.0.1',
          port: options.imapPort ?? 1,
          secure: false,
          user: options.user,
          auth: { method: 'password', password, confirmPassword: password },
        },
        smtp: { host: '127.0.0.1', port: options.smtpPort, auth: { mode: 'none' }, ...options.smtp },
      })
    ).id as string;
  }

  /** A destination `address` on `serverId`, its id. */
  async destination(tenantId: string, serverId: string, address: string): Promise<string> {
    return (await this.must('POST', `/tenants/${tenantId}/destinations`, { name: address, address, serverId }))
      .id as string;
  }
}

/** A fetch failure as a code: the system's (`ECONNREFUSED`, `ECONNRESET`), `TIMEOUT`, or the error's name. */
export function connectionFailure(err: unknown): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'TIMEOUT';
  return e.cause?.code ?? e.code ?? e.cause?.name ?? e.name ?? 'UNKNOWN';
}

/** The key of an answer in a tally: `202`, `503 DATABASE_UNAVAILABLE`, `ECONNREFUSED`. */
export function answerKey(answer: Answer): string {
  if (answer.status === 0) return answer.code ?? 'UNKNOWN';
  return answer.code ? `${answer.status} ${answer.code}` : String(answer.status);
}

/** The Message-ID's local part of a raw message the engine sent (its outbound id). */
export function outboundIdOf(raw: Buffer | string): string | null {
  return /^Message-ID: <(?:mailroom\.)?([^@>]+)@/im.exec(raw.toString())?.[1] ?? null;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true, or gives up after `timeoutMs`; false then. */
export async function until(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 200,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return true;
    } catch {
      // not yet (the database may be away)
    }
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}
