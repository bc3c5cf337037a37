import type { ResolveAll } from '../shared/address-lookup.js';
import type { AddressPolicy } from '../shared/address-policy.js';
import { MailroomError } from '../shared/errors.js';
import { canonicalMailAddress, mailAddressKey } from '../shared/mail-address.js';
import type { Logger } from '../shared/logger.js';
import type { SecretSealer } from '../shared/sealed-secrets.js';
import { validate } from '../shared/validation.js';
import type { DestinationRow } from '../store/rows.js';
import { newId, type NewRow, type Store, type StoreSession } from '../store/store.js';
import { DestinationCopy, DestinationInput, DestinationPatch, type DestinationView } from './schemas.js';
import { normalizeKey } from './server-form.js';
import { tenantNotFound, writeUnderTenantLock, type UniqueCollisions } from './tenant-writes.js';
import { auditedView, changedFields, secretChanges } from './audit-changes.js';
import { destinationView } from './views.js';

/** A destination's webhook secret as the audit log shows it: changed or unchanged. */
function destinationSecrets(
  body: unknown,
  before: DestinationRow | null,
  after: DestinationRow,
): Record<string, 'changed' | 'unchanged'> {
  return secretChanges(body, {
    webhookSecret: [
      'webhookSecret',
      (before?.webhookSecretSealed ?? null) !== null,
      after.webhookSecretSealed !== null,
    ],
  });
}
import { checkWebhookAddress, webhookColumnsOf } from './destination-webhook.js';
import { nameKeyOf } from '../shared/name-key.js';

/** The errors of a destination's unique-index collisions (another transaction won the race). */
const DESTINATION_COLLISIONS: UniqueCollisions = {
  destinations_tenant_name_uq: () =>
    new MailroomError('DUPLICATE_NAME', 'another destination of this tenant has this name', { field: 'name' }),
  destinations_tenant_address_uq: () =>
    new MailroomError('DUPLICATE_ADDRESS', 'another destination of this tenant has this address', {
      field: 'address',
    }),
};

type Fields = Omit<NewRow<DestinationRow>, 'id' | 'tenantId' | 'webhookUrl' | 'webhookSecretSealed' | 'webhookBatch'>;

function fieldsOf(input: DestinationInput): Fields {
  return {
    name: input.name.trim(),
    nameKey: nameKeyOf(input.name),
    // One stored form for every way of writing an address (NFC, the domain in Unicode), and the
    // key that finds the same mailbox written with a punycode domain or in other case.
    address: canonicalMailAddress(input.address) ?? input.address.trim(),
    addressKey: mailAddressKey(input.address) ?? normalizeKey(input.address),
    description: input.description ?? '',
    fromText: input.fromText ?? '',
    monitored: input.monitored ?? true,
    outgoing: input.outgoing ?? true,
    serverId: input.serverId,
  };
}

function formOf(row: DestinationRow): DestinationInput {
  return {
    name: row.name,
    address: row.address,
    description: row.description,
    fromText: row.fromText,
    monitored: row.monitored,
    outgoing: row.outgoing,
    serverId: row.serverId,
  };
}

/** Destinations: the monitored addresses of a tenant and the e-mail server each one uses. */
export class DestinationService {
  /**
   * @param webhooks.addresses the addresses a webhook URL may lead to (MAILROOM_WEBHOOK_ALLOW_PRIVATE)
   * @param webhooks.resolve how host names are resolved (dns.lookup; injectable for tests)
   */
  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly sealer: SecretSealer,
    private readonly webhooks: { addresses: AddressPolicy; resolve?: ResolveAll | undefined },
  ) {}

  /** A webhook URL the request gives is checked before the tenant's lock is taken (it may wait for DNS). */
  private async checkWebhook(url: string | null | undefined): Promise<void> {
    if (url === undefined || url === null) return;
    await checkWebhookAddress(url, this.webhooks.addresses, this.webhooks.resolve);
  }

  async list(tenantId: string): Promise<DestinationView[]> {
    if (!(await this.store.tenants.get(tenantId))) throw tenantNotFound(tenantId);
    return (await this.store.destinations.listByTenant(tenantId)).map(destinationView);
  }

  async get(tenantId: string, destinationId: string): Promise<DestinationView> {
    return destinationView(await this.require(this.store, tenantId, destinationId));
  }

  async create(tenantId: string, body: unknown): Promise<DestinationView> {
    const input = validate(DestinationInput, body);
    await this.checkWebhook(input.webhookUrl);
    const row = await this.write(tenantId, async (tx) => {
      const fields = await this.check(tx, tenantId, undefined, fieldsOf(input));
      const id = newId();
      const webhook = webhookColumnsOf(this.sealer, { tenantId, rowId: id }, input, null);
      const created = await tx.destinations.insert({ id, tenantId, ...fields, ...webhook });
      await tx.audit.record({
        tenantId,
        action: 'destination.created',
        targetKind: 'destination',
        targetId: id,
        detail: { after: auditedView(destinationView(created)), secrets: destinationSecrets(body, null, created) },
      });
      return created;
    });
    this.logger.info({ tenantId, destinationId: row.id, destination: row.name }, 'destination created');
    return destinationView(row);
  }

  async update(tenantId: string, destinationId: string, body: unknown): Promise<DestinationView> {
    const patch = validate(DestinationPatch, body);
    await this.checkWebhook(patch.webhookUrl);
    const row = await this.write(tenantId, async (tx) => {
      const current = await this.require(tx, tenantId, destinationId);
      const input = validate(DestinationInput, { ...formOf(current), ...patch });
      const fields = await this.check(tx, tenantId, destinationId, fieldsOf(input));
      const webhook = webhookColumnsOf(this.sealer, { tenantId, rowId: destinationId }, input, current);
      // A server's default destination must use that server: moving it elsewhere ends that role.
      if (fields.serverId !== current.serverId) {
        await tx.servers.clearDefaultDestinationUnlessUsed(destinationId, fields.serverId);
      }
      const updated = await tx.destinations.replace({ id: destinationId, tenantId, ...fields, ...webhook });
      // Events waiting for a batch under the old setting go as the new one says (at once, or as batches).
      if (JSON.stringify(current.webhookBatch) !== JSON.stringify(updated.webhookBatch)) {
        await tx.webhooks.dueNow(destinationId);
      }
      await tx.audit.record({
        tenantId,
        action: 'destination.updated',
        targetKind: 'destination',
        targetId: destinationId,
        detail: {
          ...changedFields(destinationView(current), destinationView(updated)),
          secrets: destinationSecrets(patch, current, updated),
        },
      });
      return updated;
    });
    this.logger.info({ tenantId, destinationId, destination: row.name }, 'destination updated');
    return destinationView(row);
  }

  /** A new destination with the source's settings under a new name and address. */
  async copy(tenantId: string, destinationId: string, body: unknown): Promise<DestinationView> {
    const overrides = validate(DestinationCopy, body);
    await this.checkWebhook(overrides.webhookUrl);
    const row = await this.write(tenantId, async (tx) => {
      const source = await this.require(tx, tenantId, destinationId);
      const input = validate(DestinationInput, { ...formOf(source), ...overrides });
      const fields = await this.check(tx, tenantId, undefined, fieldsOf(input));
      const id = newId();
      const webhook = webhookColumnsOf(this.sealer, { tenantId, rowId: id }, input, null);
      const created = await tx.destinations.insert({ id, tenantId, ...fields, ...webhook });
      await tx.audit.record({
        tenantId,
        action: 'destination.copied',
        targetKind: 'destination',
        targetId: id,
        detail: {
          copiedFrom: destinationId,
          after: auditedView(destinationView(created)),
          secrets: destinationSecrets(overrides, null, created),
        },
      });
      return created;
    });
    this.logger.info({ tenantId, destinationId: row.id, copiedFrom: destinationId }, 'destination copied');
    return destinationView(row);
  }

  async delete(tenantId: string, destinationId: string): Promise<void> {
    await this.write(tenantId, async (tx) => {
      const row = await this.require(tx, tenantId, destinationId);
      await tx.destinations.delete(tenantId, destinationId);
      await tx.audit.record({
        tenantId,
        action: 'destination.deleted',
        targetKind: 'destination',
        targetId: destinationId,
        detail: { before: auditedView(destinationView(row)) },
      });
    });
    this.logger.info({ tenantId, destinationId }, 'destination deleted');
  }

  private async check(tx: StoreSession, tenantId: string, selfId: string | undefined, fields: Fields): Promise<Fields> {
    if (fields.serverId !== null) {
      const server = await tx.servers.get(tenantId, fields.serverId);
      if (!server) {
        throw new MailroomError('VALIDATION_FAILED', `'serverId' names no e-mail server of this tenant`, {
          field: 'serverId',
        });
      }
    } else if (fields.monitored || fields.outgoing) {
      throw new MailroomError(
        'VALIDATION_FAILED',
        `'serverId' is required while the destination is monitored or available for outgoing mail`,
        { field: 'serverId' },
      );
    }
    const sameName = await tx.destinations.findByName(tenantId, fields.nameKey);
    if (sameName && sameName.id !== selfId) {
      throw new MailroomError('DUPLICATE_NAME', `this tenant already has a destination named '${sameName.name}'`, {
        field: 'name',
        details: { destinationId: sameName.id },
      });
    }
    const sameAddress = await tx.destinations.findByAddress(tenantId, fields.addressKey);
    if (sameAddress && sameAddress.id !== selfId) {
      throw new MailroomError(
        'DUPLICATE_ADDRESS',
        `destination '${sameAddress.name}' of this tenant already has the address ${sameAddress.address}`,
        { field: 'address', details: { destinationId: sameAddress.id } },
      );
    }
    return fields;
  }

  /** Runs a change in a transaction holding the tenant's lock; maps unique-index collisions. */
  private write<T>(tenantId: string, fn: (tx: StoreSession) => Promise<T>): Promise<T> {
    return writeUnderTenantLock(this.store, tenantId, DESTINATION_COLLISIONS, fn);
  }

  private async require(session: StoreSession, tenantId: string, destinationId: string): Promise<DestinationRow> {
    const row = await session.destinations.get(tenantId, destinationId);
    if (row) return row;
    if (!(await session.tenants.get(tenantId))) throw tenantNotFound(tenantId);
    throw new MailroomError('DESTINATION_NOT_FOUND', `destination ${destinationId} does not exist in this tenant`, {
      details: { destinationId },
    });
  }
}
