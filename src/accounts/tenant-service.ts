import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { validate } from '../shared/validation.js';
import { newId, uniqueViolationOf, type Store } from '../store/store.js';
import { TenantInput, TenantPatch, type TenantView } from './schemas.js';
import { tenantNotFound } from './tenant-writes.js';
import { auditedView, changedFields } from './audit-changes.js';
import { tenantView } from './views.js';
import { nameKeyOf } from '../shared/name-key.js';

function duplicateName(name: string): MailroomError {
  return new MailroomError('DUPLICATE_NAME', `a tenant named '${name}' already exists`, {
    field: 'name',
    // Other tenants' names are not a tenant's business: the name cannot be had, nothing more.
    forTenants: { message: 'this name cannot be used; choose another' },
  });
}

/** Tenants (business units). A tenant is deleted only once it has no servers and destinations. */
export class TenantService {
  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

  async list(onlyTenantId?: string): Promise<TenantView[]> {
    const rows = await this.store.tenants.list();
    return rows.filter((t) => onlyTenantId === undefined || t.id === onlyTenantId).map(tenantView);
  }

  async get(tenantId: string): Promise<TenantView> {
    const row = await this.store.tenants.get(tenantId);
    if (!row) throw tenantNotFound(tenantId);
    return tenantView(row);
  }

  async create(body: unknown): Promise<TenantView> {
    const input = validate(TenantInput, body);
    const name = input.name.trim();
    try {
      const row = await this.store.transaction(async (tx) => {
        const created = await tx.tenants.insert({ id: newId(), name, nameKey: nameKeyOf(name) });
        await tx.audit.record({
          tenantId: created.id,
          action: 'tenant.created',
          targetKind: 'tenant',
          targetId: created.id,
          detail: { after: auditedView(tenantView(created)) },
        });
        return created;
      });
      this.logger.info({ tenantId: row.id, tenant: row.name }, 'tenant created');
      return tenantView(row);
    } catch (err) {
      if (uniqueViolationOf(err) === 'tenants_name_key_uq') throw duplicateName(name);
      throw err;
    }
  }

  async update(tenantId: string, body: unknown): Promise<TenantView> {
    const patch = validate(TenantPatch, body);
    await this.get(tenantId);
    if (patch.name !== undefined) {
      const name = patch.name.trim();
      try {
        await this.store.transaction(async (tx) => {
          const before = await tx.tenants.get(tenantId);
          if (!before) throw tenantNotFound(tenantId);
          await tx.tenants.update(tenantId, { name, nameKey: nameKeyOf(name) });
          const after = (await tx.tenants.get(tenantId)) ?? before;
          await tx.audit.record({
            tenantId,
            action: 'tenant.updated',
            targetKind: 'tenant',
            targetId: tenantId,
            detail: changedFields(tenantView(before), tenantView(after)),
          });
        });
      } catch (err) {
        if (uniqueViolationOf(err) === 'tenants_name_key_uq') throw duplicateName(name);
        throw err;
      }
    }
    return this.get(tenantId);
  }

  async delete(tenantId: string): Promise<void> {
    await this.store.transaction(async (tx) => {
      if (!(await tx.tenants.lock(tenantId))) throw tenantNotFound(tenantId);
      const before = await tx.tenants.get(tenantId);
      const servers = await tx.servers.countByTenant(tenantId);
      const destinations = await tx.destinations.countByTenant(tenantId);
      if (servers > 0 || destinations > 0) {
        throw new MailroomError(
          'TENANT_NOT_EMPTY',
          `the tenant still has ${servers} e-mail server(s) and ${destinations} destination(s); delete them first`,
          { details: { servers, destinations } },
        );
      }
      await tx.tenants.delete(tenantId);
      await tx.audit.record({
        tenantId,
        action: 'tenant.deleted',
        targetKind: 'tenant',
        targetId: tenantId,
        detail: { before: before ? auditedView(tenantView(before)) : {} },
      });
    });
    this.logger.info({ tenantId }, 'tenant deleted');
  }
}
