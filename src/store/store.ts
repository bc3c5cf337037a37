import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DataSource, EntityManager, QueryFailedError } from 'typeorm';
import { MailroomError } from '../shared/errors.js';
import { releasePidLock, takePidLock } from '../shared/pid-lock.js';
import type { Logger } from '../shared/logger.js';
import { createDataSource, migrate, type DataSourceOptions, type StoreKind } from './data-source.js';
import { ApiTokenEntity, DestinationEntity, EmailServerEntity, TenantEntity } from './entities.js';
import {
  AlertRepository,
  CheckpointRepository,
  DeliveryRepository,
  InboundMessageRepository,
} from './inbound-repositories.js';
import { OutboundMessageRepository } from './outbound-messages.js';
import { OutboundRequestRepository } from './outbound-requests.js';
import { RetiredInstanceRepository } from './retired-instances.js';
import { SendLogRepository } from './send-log.js';
import { OAuthGrantRepository } from './oauth-grants.js';
import { ResponseFileSettingsRepository } from './response-file-settings.js';
import type { ApiTokenRow, DestinationRow, EmailServerRow, TenantRow } from './rows.js';
import { WebhookDeliveryRepository } from './webhook-deliveries.js';
import { LeaseRepository } from './leases.js';
import { AuditLogRepository } from './audit-log.js';
import { TraceRepository } from './trace-events.js';
import { TraceSearchRepository } from './trace-search.js';
import { ErasureRepository } from './erasure-repository.js';
import { LifecycleRepository } from './lifecycle-repositories.js';
import { ExportReads } from './export-reads.js';
import { SourceMoves } from './source-moves.js';
import { noNotifications, PostgresNotifications, type Notifications } from './notifications.js';
import { MessageSources } from './sources/message-sources.js';

export type { StoreKind } from './data-source.js';

export type NewRow<R> = Omit<R, 'createdAt' | 'updatedAt' | 'lastUsedAt'>;

/** The name of the unique index a failed INSERT/UPDATE collided with, if that is why it failed. */
export function uniqueViolationOf(err: unknown): string | undefined {
  const driverError: unknown = err instanceof QueryFailedError ? err.driverError : err;
  if (typeof driverError !== 'object' || driverError === null) return undefined;
  const { code, constraint } = driverError as { code?: unknown; constraint?: unknown };
  return code === '23505' && typeof constraint === 'string' ? constraint : undefined;
}

export function newId(): string {
  return randomUUID();
}

export class TenantRepository {
  constructor(private readonly em: EntityManager) {}

  list(): Promise<TenantRow[]> {
    return this.em.find(TenantEntity, { order: { nameKey: 'ASC' } });
  }
  /** Every tenant's name by id (for log lines that name a tenant). */
  async names(): Promise<Map<string, string>> {
    const rows: Array<{ id: string; name: string }> = await this.em.query('SELECT id, name FROM tenants');
    return new Map(rows.map((r) => [r.id, r.name]));
  }
  get(id: string): Promise<TenantRow | null> {
    return this.em.findOneBy(TenantEntity, { id });
  }
  async insert(row: NewRow<TenantRow>): Promise<TenantRow> {
    await this.em.insert(TenantEntity, row);
    return (await this.get(row.id)) as TenantRow;
  }
  async update(id: string, patch: Partial<NewRow<TenantRow>>): Promise<void> {
    await this.em.update(TenantEntity, { id }, patch);
  }
  async delete(id: string): Promise<boolean> {
    return ((await this.em.delete(TenantEntity, { id })).affected ?? 0) > 0;
  }
  /** Takes the tenant's row lock until the transaction ends: serialises rule checks per tenant. */
  async lock(id: string): Promise<boolean> {
    const rows: unknown[] = await this.em.query('SELECT id FROM tenants WHERE id = $1 FOR UPDATE', [id]);
    return rows.length > 0;
  }
}

export class ServerRepository {
  constructor(private readonly em: EntityManager) {}

  listByTenant(tenantId: string): Promise<EmailServerRow[]> {
    return this.em.find(EmailServerEntity, { where: { tenantId }, order: { nameKey: 'ASC' } });
  }
  listAll(): Promise<EmailServerRow[]> {
    return this.em.find(EmailServerEntity, { order: { createdAt: 'ASC' } });
  }
  /**
   * Changes whenever a server is added, changed or deleted (count and latest update time): lets a
   * periodic check skip reading every row when nothing changed.
   */
  async fingerprint(): Promise<string> {
    const [row]: Array<{ n: string; latest: string | null }> = await this.em.query(
      `SELECT count(*) AS n, max(updated_at)::text AS latest FROM email_servers`,
    );
    return `${row?.n ?? 0}/${row?.latest ?? ''}`;
  }
  get(tenantId: string, id: string): Promise<EmailServerRow | null> {
    return this.em.findOneBy(EmailServerEntity, { tenantId, id });
  }
  /** The server, or SERVER_NOT_FOUND naming `ref` (its id unless the caller knows it by a name). */
  async require(tenantId: string, id: string, ref: string = id): Promise<EmailServerRow> {
    const row = await this.get(tenantId, id);
    if (!row) throw new MailroomError('SERVER_NOT_FOUND', `e-mail server ${ref} does not exist in this tenant`);
    return row;
  }
  countByTenant(tenantId: string): Promise<number> {
    return this.em.countBy(EmailServerEntity, { tenantId });
  }
  findByAccountKey(accountKey: string): Promise<EmailServerRow | null> {
    return this.em.findOneBy(EmailServerEntity, { accountKey });
  }
  findByName(tenantId: string, nameKey: string): Promise<EmailServerRow | null> {
    return this.em.findOneBy(EmailServerEntity, { tenantId, nameKey });
  }
  async insert(row: NewRow<EmailServerRow>): Promise<EmailServerRow> {
    await this.em.insert(EmailServerEntity, row);
    return (await this.get(row.tenantId, row.id)) as EmailServerRow;
  }
  async replace(row: NewRow<EmailServerRow>): Promise<EmailServerRow> {
    const { id, tenantId, ...rest } = row;
    await this.em.update(EmailServerEntity, { id, tenantId }, rest);
    return (await this.get(tenantId, id)) as EmailServerRow;
  }
  async delete(tenantId: string, id: string): Promise<boolean> {
    return ((await this.em.delete(EmailServerEntity, { tenantId, id })).affected ?? 0) > 0;
  }
  /** Whether a server with this id exists (in any tenant). */
  async exists(id: string): Promise<boolean> {
    return (await this.em.countBy(EmailServerEntity, { id })) > 0;
  }
  /** Servers whose default destination is `destinationId` but which it no longer uses get none. */
  async clearDefaultDestinationUnlessUsed(destinationId: string, usedServerId: string | null): Promise<void> {
    await this.em.query(
      `UPDATE email_servers SET default_destination_id = NULL, updated_at = now()
        WHERE default_destination_id = $1 AND id IS DISTINCT FROM $2::uuid`,
      [destinationId, usedServerId],
    );
  }
}

export class DestinationRepository {
  constructor(private readonly em: EntityManager) {}

  listByTenant(tenantId: string): Promise<DestinationRow[]> {
    return this.em.find(DestinationEntity, { where: { tenantId }, order: { nameKey: 'ASC' } });
  }
  listByServer(serverId: string): Promise<DestinationRow[]> {
    return this.em.find(DestinationEntity, { where: { serverId }, order: { nameKey: 'ASC' } });
  }
  countByTenant(tenantId: string): Promise<number> {
    return this.em.countBy(DestinationEntity, { tenantId });
  }
  get(tenantId: string, id: string): Promise<DestinationRow | null> {
    return this.em.findOneBy(DestinationEntity, { tenantId, id });
  }
  findByName(tenantId: string, nameKey: string): Promise<DestinationRow | null> {
    return this.em.findOneBy(DestinationEntity, { tenantId, nameKey });
  }
  findByAddress(tenantId: string, addressKey: string): Promise<DestinationRow | null> {
    return this.em.findOneBy(DestinationEntity, { tenantId, addressKey });
  }
  async insert(row: NewRow<DestinationRow>): Promise<DestinationRow> {
    await this.em.insert(DestinationEntity, row);
    return (await this.get(row.tenantId, row.id)) as DestinationRow;
  }
  async replace(row: NewRow<DestinationRow>): Promise<DestinationRow> {
    const { id, tenantId, ...rest } = row;
    await this.em.update(DestinationEntity, { id, tenantId }, rest);
    return (await this.get(tenantId, id)) as DestinationRow;
  }
  async delete(tenantId: string, id: string): Promise<boolean> {
    return ((await this.em.delete(DestinationEntity, { tenantId, id })).affected ?? 0) > 0;
  }
}

export class ApiTokenRepository {
  constructor(private readonly em: EntityManager) {}

  findByHash(tokenHash: string): Promise<ApiTokenRow | null> {
    return this.em.findOneBy(ApiTokenEntity, { tokenHash });
  }
  list(tenantId?: string): Promise<ApiTokenRow[]> {
    return this.em.find(ApiTokenEntity, {
      where: tenantId === undefined ? {} : { tenantId },
      order: { createdAt: 'ASC' },
    });
  }
  countOfTenant(tenantId: string): Promise<number> {
    return this.em.countBy(ApiTokenEntity, { tenantId });
  }
  async insert(row: Omit<ApiTokenRow, 'createdAt' | 'lastUsedAt'>): Promise<ApiTokenRow> {
    await this.em.insert(ApiTokenEntity, row);
    return (await this.em.findOneBy(ApiTokenEntity, { id: row.id })) as ApiTokenRow;
  }
  async touch(id: string, at: Date): Promise<void> {
    await this.em.update(ApiTokenEntity, { id }, { lastUsedAt: at });
  }
  async delete(id: string): Promise<boolean> {
    return ((await this.em.delete(ApiTokenEntity, { id })).affected ?? 0) > 0;
  }
}

/** Repositories bound to one EntityManager: the data source's, or a transaction's. */
export class StoreSession {
  readonly tenants: TenantRepository;
  readonly servers: ServerRepository;
  readonly destinations: DestinationRepository;
  readonly apiTokens: ApiTokenRepository;
  readonly checkpoints: CheckpointRepository;
  readonly messages: InboundMessageRepository;
  readonly deliveries: DeliveryRepository;
  readonly alerts: AlertRepository;
  readonly oauthGrants: OAuthGrantRepository;
  readonly outbound: OutboundMessageRepository;
  readonly outboundRequests: OutboundRequestRepository;
  readonly retiredInstances: RetiredInstanceRepository;
  readonly sendLog: SendLogRepository;
  readonly responseFiles: ResponseFileSettingsRepository;
  readonly webhooks: WebhookDeliveryRepository;
  readonly leases: LeaseRepository;
  readonly audit: AuditLogRepository;
  readonly trace: TraceRepository;
  readonly traceSearch: TraceSearchRepository;
  readonly lifecycle: LifecycleRepository;
  readonly erasures: ErasureRepository;
  readonly exports: ExportReads;
  readonly sourceMoves: SourceMoves;

  constructor(
    protected readonly em: EntityManager,
    /** Where the lease repository runs (the store's own connection pool for the cluster; `em` in a transaction). */
    leasesEm: EntityManager = em,
  ) {
    this.tenants = new TenantRepository(em);
    this.servers = new ServerRepository(em);
    this.destinations = new DestinationRepository(em);
    this.apiTokens = new ApiTokenRepository(em);
    this.checkpoints = new CheckpointRepository(em);
    this.messages = new InboundMessageRepository(em);
    this.deliveries = new DeliveryRepository(em);
    this.alerts = new AlertRepository(em);
    this.oauthGrants = new OAuthGrantRepository(em);
    this.outbound = new OutboundMessageRepository(em);
    this.outboundRequests = new OutboundRequestRepository(em);
    this.retiredInstances = new RetiredInstanceRepository(em);
    this.sendLog = new SendLogRepository(em);
    this.responseFiles = new ResponseFileSettingsRepository(em);
    this.webhooks = new WebhookDeliveryRepository(em);
    this.leases = new LeaseRepository(leasesEm);
    this.audit = new AuditLogRepository(em);
    this.trace = new TraceRepository(em);
    this.traceSearch = new TraceSearchRepository(em);
    this.lifecycle = new LifecycleRepository(em);
    this.erasures = new ErasureRepository(em);
    this.exports = new ExportReads(em);
    this.sourceMoves = new SourceMoves(em);
  }
}

/**
 * The database: PostgreSQL when a URL is given, embedded PGlite otherwise. The only place
 * TypeORM is visible; everything else works with the row types and repositories.
 */
/** [2] connections of the pool the cluster's leases use (renewal and the watchdog's reads). */
const CLUSTER_POOL_SIZE = 2;

export class Store extends StoreSession {
  private closed = false;
  /** The raw sources of inbound messages (PostgreSQL alone until the engine hands in its choice). */
  private messageSources: MessageSources;

  private constructor(
    private readonly dataSource: DataSource,
    readonly kind: StoreKind,
    private readonly databaseUrl: string | undefined,
    /** The embedded database's lock file, held while this store is open. */
    private readonly lockFile: string | undefined,
    /**
     * PostgreSQL: a small pool of its own for the leases that keep this instance's servers (and
     * its health): requests that fill the main pool (a thousand event streams opening) must not
     * hold up their renewal, or every tenant's watchers are given up when the leases lapse.
     */
    private readonly clusterDataSource: DataSource | undefined,
  ) {
    super(dataSource.manager, (clusterDataSource ?? dataSource).manager);
    this.messageSources = MessageSources.inDatabase((sql, params) => this.query(sql, params));
  }

  /** Where the raw sources of inbound messages are written and read. */
  get sources(): MessageSources {
    return this.messageSources;
  }

  /**
   * Sets the source backends (the engine once at start, from MAILROOM_BLOB_STORE and friends; a
   * test per case). Answers the ones they replace, which the caller closes.
   */
  useSources(make: (query: <T>(sql: string, params?: unknown[]) => Promise<T[]>) => MessageSources): MessageSources {
    const previous = this.messageSources;
    this.messageSources = make((sql, params) => this.query(sql, params));
    return previous;
  }

  /**
   * Signals to and from the other instances sharing this database (LISTEN/NOTIFY on its own
   * connection); none on the embedded database, which has one process. The caller closes it.
   */
  notifications(logger: Logger): Notifications {
    if (this.kind !== 'postgres' || !this.databaseUrl) return noNotifications;
    return new PostgresNotifications(this.databaseUrl, (sql, params) => this.dataSource.query(sql, params), logger);
  }

  /**
   * Connects and runs pending migrations. An embedded database in a folder is locked first: PGlite
   * is one process's database, and a second process opening the same folder (the CLI beside a
   * running engine) would write where the first never looks, and lose it when the first writes
   * back. So it is refused at once with DATABASE_LOCKED instead.
   */
  static async open(options: DataSourceOptions, logger: Logger): Promise<Store> {
    const lockFile = options.databaseUrl || !options.pgliteDir ? undefined : await lockEmbedded(options.pgliteDir);
    try {
      const { dataSource, kind } = createDataSource(options);
      await dataSource.initialize();
      try {
        await migrate(dataSource, kind, logger);
      } catch (err) {
        await dataSource.destroy();
        throw err;
      }
      let cluster: DataSource | undefined;
      if (kind === 'postgres') {
        cluster = createDataSource({ ...options, poolSize: CLUSTER_POOL_SIZE }).dataSource;
        try {
          await cluster.initialize();
        } catch (err) {
          await dataSource.destroy();
          throw err;
        }
      }
      logger.info({ store: kind }, 'database ready');
      return new Store(dataSource, kind, options.databaseUrl, lockFile, cluster);
    } catch (err) {
      if (lockFile) await releasePidLock(lockFile);
      throw err;
    }
  }

  /** Runs `fn` in one transaction; repositories of the session it gets see and write only inside it. */
  transaction<T>(fn: (tx: StoreSession) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((em) => fn(new StoreSession(em)));
  }

  /** Plain SQL, for checks and maintenance (tests, health). */
  query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.dataSource.query(sql, params);
  }

  /** SQL statements that would bring the schema in line with the entities; empty when migrations match. */
  async pendingSchemaChanges(): Promise<string[]> {
    const log = await this.dataSource.driver.createSchemaBuilder().log();
    return log.upQueries.map((q) => q.query);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.clusterDataSource?.destroy().catch(() => undefined);
      await this.dataSource.destroy();
    } finally {
      if (this.lockFile) await releasePidLock(this.lockFile);
    }
    await this.messageSources.close().catch(() => undefined);
  }
}

/** Takes the lock of the embedded database in `dir` (the file `<dir>.lock` beside it); returns its path. */
async function lockEmbedded(dir: string): Promise<string> {
  const file = `${resolve(dir)}.lock`;
  await mkdir(dirname(file), { recursive: true });
  await takePidLock(
    file,
    (holder) =>
      new MailroomError(
        'DATABASE_LOCKED',
        `the embedded database ${resolve(dir)} is in use by process ${holder} (a running engine?): ` +
          'stop it first, or make the change through its HTTP API or web console, since the CLI works on the ' +
          `database directly (if no Mailroom runs as process ${holder}, delete ${file})`,
        { details: { pid: holder, lockFile: file } },
      ),
  );
  return file;
}
