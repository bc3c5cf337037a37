import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createAccounts, type Accounts } from '../../src/accounts/index.js';
import { buildApi } from '../../src/api/http-server.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Store, StoreKind } from '../../src/store/store.js';
import { isPostgresReachable, resetStore, sharedStore } from './database.js';
import { capturingLogger } from './log-capture.js';

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  raw: string;
}

export interface ApiHarness {
  kind: StoreKind;
  store: Store;
  accounts: Accounts;
  app: FastifyInstance;
  adminToken: string;
  logLines: string[];
  call<T = Record<string, unknown>>(
    method: string,
    url: string,
    body?: unknown,
    token?: string,
  ): Promise<ApiResponse<T>>;
  close(): Promise<void>;
}

/**
 * The real API (fastify, schemas, services, store) on one backend, driven through
 * fastify's inject (the whole HTTP stack but the socket). Logs are captured.
 */
export async function openApiHarness(kind: StoreKind): Promise<ApiHarness> {
  const store = await sharedStore(kind);
  await resetStore(store);
  const { logger, lines } = capturingLogger('debug');
  const sealer = new SecretSealer(randomBytes(32));
  const accounts = createAccounts(store, sealer, logger);
  const adminToken = `admin-${randomBytes(8).toString('hex')}`;
  const app = await buildApi({ accounts, logger, adminToken });
  return {
    kind,
    store,
    accounts,
    app,
    adminToken,
    logLines: lines,
    async call<T>(method: string, url: string, body?: unknown, token: string = adminToken): Promise<ApiResponse<T>> {
      const res = await app.inject({
        method: method as 'GET',
        url,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { payload: JSON.stringify(body) }),
      });
      return { status: res.statusCode, body: (res.body === '' ? {} : res.json()) as T, raw: res.body };
    },
    close: () => app.close(),
  };
}

/** Defines the same suite once per database backend; PostgreSQL is skipped (with a note) only outside CI. */
export function forEachBackend(title: string, suite: (kind: StoreKind) => void): void {
  for (const kind of ['postgres', 'pglite'] as const) {
    describe(`${title} [${kind}]`, function () {
      before(async function () {
        if (kind === 'postgres' && !(await isPostgresReachable())) {
          process.stdout.write('skipped: PostgreSQL is not reachable on 127.0.0.1:5432\n');
          this.skip();
        }
      });
      suite(kind);
    });
  }
}
