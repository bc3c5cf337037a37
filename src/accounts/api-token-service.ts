import { createHash, randomBytes } from 'node:crypto';
import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { validate } from '../shared/validation.js';
import { newId, type Store } from '../store/store.js';
import { ApiTokenInput, MAX_TOKENS_PER_TENANT, type ApiTokenView } from './schemas.js';
import { tenantNotFound } from './tenant-writes.js';
import { auditedView } from './audit-changes.js';
import { apiTokenView } from './views.js';

/** Who a request acts for: the administrator (every tenant) or one tenant's administrator. */
/** Who a request is: the administrator or a tenant, by the token it carries (its name for logs, never its value). */
export type Principal =
  | { kind: 'admin'; tokenId: string | null; name: string }
  | { kind: 'tenant'; tenantId: string; tokenId: string; name: string };

/** The name the audit log gives the administrator token of the configuration (MAILROOM_API_TOKEN). */
export const CONFIGURED_ADMIN_NAME = 'administrator (MAILROOM_API_TOKEN)';

/** [10000] wrong tokens remembered (see ApiTokenService.unknownHashes). */
const UNKNOWN_TOKENS_KEPT = 10_000;
/** [60000] how long a wrong token is remembered, ms. */
const UNKNOWN_TOKEN_TTL_MS = 60_000;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * API tokens stored in the database (only their SHA-256): tenant-scoped ones for a tenant's
 * administrators, and further administrator tokens. The configured MAILROOM_API_TOKEN is
 * checked by the API itself and is never stored.
 */
export class ApiTokenService {
  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

  /** Creates a token; the returned `token` is shown this once. */
  async create(tenantId: string | null, body: unknown): Promise<ApiTokenView & { token: string }> {
    const input = validate(ApiTokenInput, body);
    if (tenantId !== null && !(await this.store.tenants.get(tenantId))) throw tenantNotFound(tenantId);
    const token = `mr_${randomBytes(24).toString('base64url')}`;
    const row = await this.store.transaction(async (tx) => {
      if (tenantId !== null && (await tx.apiTokens.countOfTenant(tenantId)) >= MAX_TOKENS_PER_TENANT) {
        throw new MailroomError(
          'TOKEN_LIMIT_REACHED',
          `the tenant already has ${MAX_TOKENS_PER_TENANT} API tokens, the most it may hold; revoke one before creating another`,
          { details: { limit: MAX_TOKENS_PER_TENANT } },
        );
      }
      const created = await tx.apiTokens.insert({
        id: newId(),
        tenantId,
        name: input.name.trim(),
        tokenHash: hashToken(token),
      });
      await tx.audit.record({
        tenantId,
        action: 'token.created',
        targetKind: 'token',
        targetId: created.id,
        detail: { after: auditedView(apiTokenView(created)) },
      });
      return created;
    });
    this.logger.info({ tenantId, tokenId: row.id }, 'API token created');
    return { ...apiTokenView(row), token };
  }

  async list(tenantId?: string): Promise<ApiTokenView[]> {
    return (await this.store.apiTokens.list(tenantId)).map(apiTokenView);
  }

  async revoke(tokenId: string, tenantId?: string): Promise<void> {
    await this.store.transaction(async (tx) => {
      const rows = await tx.apiTokens.list(tenantId);
      const row = rows.find((r) => r.id === tokenId);
      if (!row) throw new MailroomError('TOKEN_NOT_FOUND', `API token ${tokenId} does not exist`);
      await tx.apiTokens.delete(tokenId);
      await tx.audit.record({
        tenantId: row.tenantId,
        action: 'token.revoked',
        targetKind: 'token',
        targetId: tokenId,
        detail: { before: auditedView(apiTokenView(row)) },
      });
    });
    this.logger.info({ tenantId, tokenId }, 'API token revoked');
  }

  /** The principal of a stored token, or undefined. */
  /**
   * Hashes of tokens recently found unknown (wrong or revoked), with when they were, so that the
   * same wrong token sent again and again costs no database read. Bounded (oldest dropped first);
   * a hash is forgotten after UNKNOWN_TOKEN_TTL_MS (a token is never created with a known hash:
   * they are 256 random bits).
   */
  private readonly unknownHashes = new Map<string, number>();

  async resolve(token: string): Promise<Principal | undefined> {
    const hash = hashToken(token);
    const seen = this.unknownHashes.get(hash);
    if (seen !== undefined && Date.now() - seen < UNKNOWN_TOKEN_TTL_MS) return undefined;
    const row = await this.store.apiTokens.findByHash(hash);
    if (!row) {
      this.unknownHashes.delete(hash);
      this.unknownHashes.set(hash, Date.now());
      if (this.unknownHashes.size > UNKNOWN_TOKENS_KEPT) {
        this.unknownHashes.delete(this.unknownHashes.keys().next().value as string);
      }
      return undefined;
    }
    const now = new Date();
    if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > 60_000) {
      await this.store.apiTokens.touch(row.id, now);
    }
    return row.tenantId === null
      ? { kind: 'admin', tokenId: row.id, name: row.name }
      : { kind: 'tenant', tenantId: row.tenantId, tokenId: row.id, name: row.name };
  }
}
