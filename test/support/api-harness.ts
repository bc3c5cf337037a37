import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createAccounts, type Accounts } from '../../src/accounts/index.js';
import { buildApi } from '../../src/api/http-server.js';
import { CredentialService } from '../../src/auth/credentials.js';
import { createInbound, type Inbound, type InboundOptions } from '../../src/inbound/index.js';
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
  inbound: Inbound;
  /** A second inbound side over the same database, as after an engine restart. */
  restartInbound(): Inbound;
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
/** Inbound timings for tests: quick polls and retries. */
export const FAST_INBOUND: Partial<InboundOptions> = {
  reconcileIntervalMs: 200,
  pollIntervalMs: 300,
  safetyPollMs: 5_000,
  reconnectMinMs: 100,
  reconnectMaxMs: 1_000,
  authRetryMinMs: 500,
  authRetryMaxMs: 2_000,
  socketTimeoutMs: 10_000,
};

export async function openApiHarness(
  kind: StoreKind,
  inboundOptions: Partial<InboundOptions> = FAST_INBOUND,
): Promise<ApiHarness> {
  const store = await sharedStore(kind);
  await resetStore(store);
  const { logger, lines } = capturingLogger('debug');
  const sealer = new SecretSealer(randomBytes(32));
  const accounts = createAccounts(store, sealer, logger);
  const adminToken = `admin-${randomBytes(8).toString('hex')}`;
  const credentials = new CredentialService(sealer);
  const newInbound = (): Inbound => createInbound({ store, credentials, logger, options: inboundOptions });
  const inbound = newInbound();
  const app = await buildApi({ accounts, inbound, logger, adminToken });
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
    inbound,
    restartInbound: newInbound,
    async close() {
      await app.close();
      await inbound.stop();
    },
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
