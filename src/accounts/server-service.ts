import { AddressPolicy } from '../shared/address-policy.js';
import { readCaFileIn } from '../shared/ca-file.js';
import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { NO_PROXY, proxyLabel, type MailProxies } from '../shared/mail-proxies.js';
import type { SecretSealer } from '../shared/sealed-secrets.js';
import { validate } from '../shared/validation.js';
import type { OAuthPurpose } from '../store/oauth-grants.js';
import type { EmailServerRow } from '../store/rows.js';
import { newId, type Store, type StoreSession } from '../store/store.js';
import {
  MAX_SERVERS_PER_TENANT,
  ServerCopy,
  ServerInput,
  ServerPatch,
  type ProxyChoices,
  type ServerView,
} from './schemas.js';
import {
  checkServerInput,
  withInheritedSmtpApp,
  formOf,
  keepableSecrets,
  mergeServer,
  NO_STORED_SECRETS,
  rowFieldsOf,
  voidedSignIns,
  type StoredSecrets,
} from './server-form.js';
import { checkAuthorityHosts } from './authority-host.js';
import { checkMailHosts, hostsChoice, type ChangedBy } from './mail-hosts.js';
import { tenantNotFound, writeUnderTenantLock, type UniqueCollisions } from './tenant-writes.js';
import { auditedView, changedFields, secretChanges } from './audit-changes.js';
import { serverView } from './views.js';

/** A server's secrets as the audit log names them: [path in a request body, stored before, stored after]. */
function serverSecrets(
  body: unknown,
  before: SealedColumns | null,
  after: SealedColumns | null,
): Record<string, 'changed' | 'unchanged'> {
  const has = (row: SealedColumns | null, key: keyof SealedColumns): boolean => row !== null && row[key] !== null;
  return secretChanges(body, {
    'imap.password': ['imap.auth.password', has(before, 'imapPasswordSealed'), has(after, 'imapPasswordSealed')],
    'imap.clientSecret': [
      'imap.auth.clientSecret',
      has(before, 'imapClientSecretSealed'),
      has(after, 'imapClientSecretSealed'),
    ],
    'smtp.password': ['smtp.auth.password', has(before, 'smtpPasswordSealed'), has(after, 'smtpPasswordSealed')],
    'smtp.clientSecret': [
      'smtp.auth.clientSecret',
      has(before, 'smtpClientSecretSealed'),
      has(after, 'smtpClientSecretSealed'),
    ],
  });
}

/** The errors of a server's unique-index collisions (another transaction won the race). */
const SERVER_COLLISIONS: UniqueCollisions = {
  email_servers_account_key_uq: () =>
    new MailroomError('ACCOUNT_IN_USE', 'this account (IMAP host and user name) is already configured', {
      field: 'imap.user',
    }),
  email_servers_tenant_name_uq: () =>
    new MailroomError('DUPLICATE_NAME', 'another e-mail server of this tenant has this name', { field: 'name' }),
};

export interface ServerCredentials {
  imapPassword: string | null;
  imapClientSecret: string | null;
  smtpPassword: string | null;
  smtpClientSecret: string | null;
}

type SealedColumns = Pick<
  EmailServerRow,
  'imapPasswordSealed' | 'imapClientSecretSealed' | 'smtpPasswordSealed' | 'smtpClientSecretSealed'
>;

/** Told that OAuth 2.0 sign-ins of a server ended: a change voided them, or the server was deleted. */
export type SignInsVoided = (serverId: string, purposes: OAuthPurpose[]) => void;

/** The reply recorded for outgoing mail given up with its server's deletion. */
const DISCARDED_REPLY = 'not sent: its e-mail server was deleted (waiting mail given up by an administrator)';

/**
 * E-mail servers of a tenant: at most five per tenant, one account (IMAP host + user name)
 * in one place only, no delete while destinations use it, secrets sealed per row.
 */
export class ServerService {
  private readonly voidedListeners = new Set<SignInsVoided>();

  /** @param proxies the proxies this engine is configured with, which a server chooses from */
  /**
   * @param proxies the engine's mail proxies, which servers choose from
   * @param caDir MAILROOM_CA_DIR: the only directory `imap.caFile` and `smtp.caFile` may name a file in; none: no CA file is accepted
   * @param authorityAddresses MAILROOM_OAUTH_ALLOW_PRIVATE: where an OAuth 2.0 `authorityHost` may lead
   * @param mailAddresses MAILROOM_MAIL_ALLOW_PRIVATE: where IMAP and SMTP hosts a tenant's token sets may lead
   */
  constructor(
    private readonly store: Store,
    private readonly sealer: SecretSealer,
    private readonly logger: Logger,
    private readonly proxies: MailProxies = { named: new Map() },
    private readonly caDir?: string | undefined,
    private readonly authorityAddresses: AddressPolicy = AddressPolicy.strict(),
    private readonly mailAddresses: AddressPolicy = AddressPolicy.strict(),
  ) {}

  /**
   * Calls `listener` when sign-ins of a server end (a change voided them, or the server is being
   * deleted), in the transaction making the change once its checks passed: the composition root
   * cancels the server's device-code flows and drops its token applications (and the client
   * secrets they hold), so that no sign-in completing later is saved for the changed server.
   */
  onSignInsVoided(listener: SignInsVoided): void {
    this.voidedListeners.add(listener);
  }

  private signInsVoided(serverId: string, purposes: OAuthPurpose[]): void {
    if (purposes.length === 0) return;
    for (const listener of this.voidedListeners) listener(serverId, purposes);
  }

  /** What a server's `proxy` may be, for forms: the default, and the named proxies (host and port, no credentials). */
  proxyChoices(): ProxyChoices {
    return {
      default: this.proxies.default ? proxyLabel(this.proxies.default) : null,
      named: [...this.proxies.named].map(([name, url]) => ({ name, proxy: proxyLabel(url) })),
    };
  }

  async list(tenantId: string): Promise<ServerView[]> {
    await this.requireTenant(this.store, tenantId);
    return (await this.store.servers.listByTenant(tenantId)).map(serverView);
  }

  async get(tenantId: string, serverId: string): Promise<ServerView> {
    return serverView(await this.requireServer(this.store, tenantId, serverId));
  }

  /**
   * The server's stored secrets, opened. For the engine's own IMAP/SMTP sessions only: never
   * returned by the API and never logged. A tampered or foreign value fails with SECRET_UNREADABLE.
   */
  async credentials(tenantId: string, serverId: string): Promise<ServerCredentials> {
    const row = await this.requireServer(this.store, tenantId, serverId);
    const open = (field: string, sealed: string | null): string | null =>
      sealed === null ? null : this.sealer.open(sealed, { tenantId, rowId: row.id, field });
    return {
      imapPassword: open('imap.password', row.imapPasswordSealed),
      imapClientSecret: open('imap.clientSecret', row.imapClientSecretSealed),
      smtpPassword: open('smtp.password', row.smtpPasswordSealed),
      smtpClientSecret: open('smtp.clientSecret', row.smtpClientSecretSealed),
    };
  }

  /** @param by who asks: a tenant's token (its hosts then follow MAILROOM_MAIL_ALLOW_PRIVATE) or the operator */
  async create(tenantId: string, body: unknown, by: ChangedBy = 'operator'): Promise<ServerView> {
    const input = withInheritedSmtpApp(validate(ServerInput, body));
    checkServerInput(input);
    this.checkProxy(input.proxy ?? null, null);
    const choice = hostsChoice(by, null, rowFieldsOf(input), body);
    if (choice.check) await checkMailHosts(this.mailAddresses, rowFieldsOf(input));
    await checkAuthorityHosts(this.authorityAddresses, rowFieldsOf(input), null);
    const row = await this.write(tenantId, async (tx) => {
      await this.checkLimit(tx, tenantId);
      const id = newId();
      const fields = { ...rowFieldsOf(input), hostsByTenant: choice.hostsByTenant };
      await this.checkUnique(tx, tenantId, id, fields);
      await this.checkLinks(tx, tenantId, id, fields);
      const created = await tx.servers.insert({
        id,
        tenantId,
        ...fields,
        ...this.sealAll(tenantId, id, input, NO_STORED_SECRETS),
      });
      await tx.audit.record({
        tenantId,
        action: 'server.created',
        targetKind: 'server',
        targetId: id,
        detail: { after: auditedView(serverView(created)), secrets: serverSecrets(body, null, created) },
      });
      return created;
    });
    this.logger.info({ tenantId, serverId: row.id, server: row.name }, 'e-mail server created');
    return serverView(row);
  }

  async update(tenantId: string, serverId: string, body: unknown, by: ChangedBy = 'operator'): Promise<ServerView> {
    const patch = validate(ServerPatch, body);
    let voided: OAuthPurpose[] = [];
    const row = await this.write(tenantId, async (tx) => {
      const current = await this.requireServer(tx, tenantId, serverId);
      const input = withInheritedSmtpApp(validate(ServerInput, mergeServer(formOf(current), patch)));
      const choice = hostsChoice(by, current, rowFieldsOf(input), patch);
      const fields = { ...rowFieldsOf(input), hostsByTenant: choice.hostsByTenant };
      const keep = keepableSecrets(current, fields);
      this.checkProxy(fields.proxy, current.proxy); // an unknown proxy first: entering a password would not help
      checkServerInput(input, keep);
      if (choice.check) await checkMailHosts(this.mailAddresses, fields);
      await checkAuthorityHosts(this.authorityAddresses, fields, current);
      await this.checkUnique(tx, tenantId, serverId, fields);
      await this.checkLinks(tx, tenantId, serverId, fields);
      const sealed = this.sealAll(tenantId, serverId, input, keep, current);
      // A sign-in stays only where a stored password would (see voidedSignIns): the others go
      // with the change, so the side shows INCOMPLETE and its tokens reach no new host.
      voided = voidedSignIns(current, fields);
      for (const purpose of voided) await tx.oauthGrants.delete(serverId, purpose);
      const updated = await tx.servers.replace({ id: serverId, tenantId, ...fields, ...sealed });
      await tx.audit.record({
        tenantId,
        action: 'server.updated',
        targetKind: 'server',
        targetId: serverId,
        detail: {
          ...changedFields(serverView(current), serverView(updated)),
          secrets: serverSecrets(patch, current, updated),
          ...(voided.length > 0 && { signInsVoided: voided }),
        },
      });
      return updated;
    });
    // Once committed (a change rolled back voids nothing). A sign-in or refresh still under way
    // elsewhere saves under the old place's key, which no longer counts (grantKeyOf).
    this.signInsVoided(serverId, voided);
    this.logger.info({ tenantId, serverId, server: row.name }, 'e-mail server updated');
    return serverView(row);
  }

  /** A new server with the source's settings, a new name and the given changes. */
  async copy(tenantId: string, serverId: string, body: unknown, by: ChangedBy = 'operator'): Promise<ServerView> {
    const overrides = validate(ServerCopy, body);
    const row = await this.write(tenantId, async (tx) => {
      const source = await this.requireServer(tx, tenantId, serverId);
      await this.checkLimit(tx, tenantId);
      // The source's default destination uses the source, not the copy: a copy starts without one.
      const form = { ...formOf(source), defaultDestinationId: null };
      const input = withInheritedSmtpApp(validate(ServerInput, mergeServer(form, overrides)));
      const choice = hostsChoice(by, source, rowFieldsOf(input), overrides);
      const fields = { ...rowFieldsOf(input), hostsByTenant: choice.hostsByTenant };
      const keep = keepableSecrets(source, fields);
      this.checkProxy(fields.proxy, source.proxy); // an unknown proxy first: entering a password would not help
      checkServerInput(input, keep);
      if (choice.check) await checkMailHosts(this.mailAddresses, fields);
      await checkAuthorityHosts(this.authorityAddresses, fields, source);
      const id = newId();
      await this.checkUnique(tx, tenantId, id, fields);
      await this.checkLinks(tx, tenantId, id, fields);
      const created = await tx.servers.insert({
        id,
        tenantId,
        ...fields,
        ...this.sealAll(tenantId, id, input, keep, source),
      });
      await tx.audit.record({
        tenantId,
        action: 'server.copied',
        targetKind: 'server',
        targetId: id,
        detail: {
          copiedFrom: serverId,
          after: auditedView(serverView(created)),
          secrets: serverSecrets(overrides, null, created),
        },
      });
      return created;
    });
    this.logger.info({ tenantId, serverId: row.id, copiedFrom: serverId, server: row.name }, 'e-mail server copied');
    return serverView(row);
  }

  /**
   * Deletes a server no destination uses. Mail still waiting to be sent through it (on any
   * instance) refuses the deletion, unless `discardQueued`: then each such message is marked
   * failed with why, and the instance holding it sets its file aside as a dead letter.
   */
  async delete(tenantId: string, serverId: string, options: { discardQueued?: boolean } = {}): Promise<void> {
    let discarded = 0;
    await this.write(tenantId, async (tx) => {
      const row = await this.requireServer(tx, tenantId, serverId);
      const users = await tx.destinations.listByServer(serverId);
      if (users.length > 0) {
        const names = users.map((d) => `'${d.name}'`).join(', ');
        throw new MailroomError(
          'SERVER_IN_USE',
          `e-mail server '${row.name}' is used by destination${users.length > 1 ? 's' : ''} ${names}; ` +
            `assign ${users.length > 1 ? 'them' : 'it'} to another server (or none) before deleting`,
          { details: { destinations: users.map((d) => ({ id: d.id, name: d.name })) } },
        );
      }
      // Accepted mail is never dropped silently: a server goes once nothing waits to be sent
      // through it, or when the administrator gives that mail up explicitly.
      if (options.discardQueued === true) {
        discarded = await tx.outbound.failWaiting(serverId, DISCARDED_REPLY);
      } else {
        const waiting = await tx.outbound.countWaiting(serverId);
        if (waiting > 0) {
          throw new MailroomError(
            'SERVER_HAS_QUEUED_MAIL',
            `e-mail server '${row.name}' still has ${waiting} outgoing message${waiting > 1 ? 's' : ''} waiting to ` +
              'be sent through it (its status shows the queue); wait until they are sent, or delete with ' +
              'discardQueued=true (CLI: --discard-queued) to give them up (each is marked failed, never sent)',
            { field: 'discardQueued', details: { waiting } },
          );
        }
      }
      // Its grants go with the row (foreign key).
      await tx.servers.delete(tenantId, serverId);
      await tx.audit.record({
        tenantId,
        action: 'server.deleted',
        targetKind: 'server',
        targetId: serverId,
        detail: { before: auditedView(serverView(row)), discardedQueued: discarded },
      });
    });
    // A sign-in in progress must not outlive it.
    this.signInsVoided(serverId, ['imap', 'smtp']);
    this.logger.info({ tenantId, serverId, discarded }, 'e-mail server deleted');
  }

  /** Runs a change in a transaction holding the tenant's lock; maps unique-index collisions. */
  private write<T>(tenantId: string, fn: (tx: StoreSession) => Promise<T>): Promise<T> {
    return writeUnderTenantLock(this.store, tenantId, SERVER_COLLISIONS, fn);
  }

  /**
   * A proxy chosen by name must be one the engine is configured with. A name kept from before
   * (the configuration changed since) does not stand in the way of other changes; connections
   * then fail with PROXY_NOT_CONFIGURED until it is configured again or another is chosen.
   */
  private checkProxy(proxy: string | null, before: string | null): void {
    if (proxy === null || proxy === NO_PROXY || proxy === before || this.proxies.named.has(proxy)) return;
    const known = [...this.proxies.named.keys()].map((n) => `'${n}'`).join(', ');
    throw new MailroomError(
      'VALIDATION_FAILED',
      `'proxy': this engine has no proxy named '${proxy}' (${known ? `configured: ${known}` : 'MAILROOM_PROXIES names none'}; ` +
        `'${NO_PROXY}' connects directly, null takes the engine's default)`,
      { field: 'proxy' },
    );
  }

  private async checkLimit(tx: StoreSession, tenantId: string): Promise<void> {
    const count = await tx.servers.countByTenant(tenantId);
    if (count >= MAX_SERVERS_PER_TENANT) {
      const tenant = await tx.tenants.get(tenantId);
      throw new MailroomError(
        'SERVER_LIMIT_REACHED',
        `tenant '${tenant?.name ?? tenantId}' already has ${count} e-mail servers, the most a tenant may have ` +
          `(${MAX_SERVERS_PER_TENANT}); delete one before adding another`,
        { details: { limit: MAX_SERVERS_PER_TENANT } },
      );
    }
  }

  private async checkUnique(
    tx: StoreSession,
    tenantId: string,
    serverId: string,
    fields: Pick<EmailServerRow, 'nameKey' | 'name' | 'accountKey' | 'imapHost' | 'imapUser'>,
  ): Promise<void> {
    const sameName = await tx.servers.findByName(tenantId, fields.nameKey);
    if (sameName && sameName.id !== serverId) {
      throw new MailroomError('DUPLICATE_NAME', `this tenant already has an e-mail server named '${sameName.name}'`, {
        field: 'name',
        details: { serverId: sameName.id },
      });
    }
    const sameAccount = await tx.servers.findByAccountKey(fields.accountKey);
    if (sameAccount && sameAccount.id !== serverId) {
      const account = `account '${fields.imapUser}' on ${fields.imapHost}`;
      if (sameAccount.tenantId === tenantId) {
        throw new MailroomError(
          'ACCOUNT_IN_USE',
          `${account} is already configured in this tenant as e-mail server '${sameAccount.name}'; use another user name`,
          { field: 'imap.user', details: { serverId: sameAccount.id } },
        );
      }
      const other = await tx.tenants.get(sameAccount.tenantId);
      throw new MailroomError(
        'ACCOUNT_IN_USE',
        `${account} is already configured in tenant '${other?.name ?? sameAccount.tenantId}'; ` +
          `an account may belong to one tenant only`,
        {
          field: 'imap.user',
          details: { tenantId: sameAccount.tenantId, tenantName: other?.name ?? null },
          forTenants: { message: `${account} is already in use elsewhere; an account may belong to one tenant only` },
        },
      );
    }
  }

  /** A side's CA file (`field`) must be a readable file of PEM certificates in MAILROOM_CA_DIR. */
  private async checkCaFile(tenantId: string, serverId: string, field: string, caFile: string | null): Promise<void> {
    if (caFile === null) return;
    try {
      await readCaFileIn(this.caDir, caFile);
    } catch (err) {
      // One answer whatever the reason: which paths exist, are folders or hold no certificate
      // is the engine's machine's business. The operator reads the reason in the log.
      this.logger.warn({ tenantId, serverId, field, caFile, reason: (err as Error).message }, 'a CA file was refused');
      throw new MailroomError(
        'VALIDATION_FAILED',
        `'${field}' must name a readable file of PEM CA certificates in the engine's CA directory ` +
          `(MAILROOM_CA_DIR; ask its operator)`,
        { field },
      );
    }
  }

  /**
   * What the server refers to must be usable: each CA file exists and holds PEM certificates, and
   * the default destination is a destination of this tenant that uses this server.
   */
  private async checkLinks(
    tx: StoreSession,
    tenantId: string,
    serverId: string,
    fields: Pick<EmailServerRow, 'imapCaFile' | 'smtpCaFile' | 'defaultDestinationId'>,
  ): Promise<void> {
    await this.checkCaFile(tenantId, serverId, 'imap.caFile', fields.imapCaFile);
    await this.checkCaFile(tenantId, serverId, 'smtp.caFile', fields.smtpCaFile);
    if (fields.defaultDestinationId !== null) {
      const destination = await tx.destinations.get(tenantId, fields.defaultDestinationId);
      if (!destination || destination.serverId !== serverId) {
        throw new MailroomError(
          'VALIDATION_FAILED',
          destination
            ? `'defaultDestinationId': destination '${destination.name}' does not use this e-mail server; ` +
                'assign it to this server first'
            : `'defaultDestinationId' names no destination of this tenant`,
          { field: 'defaultDestinationId', details: { destinationId: fields.defaultDestinationId } },
        );
      }
    }
  }

  /** Seals the secrets given in `input`, keeping (re-sealed for this row) stored ones where allowed. */
  private sealAll(
    tenantId: string,
    rowId: string,
    input: ServerInput,
    keep: StoredSecrets,
    source?: EmailServerRow,
  ): SealedColumns {
    const imap = input.imap.auth;
    const smtp = input.smtp.auth;
    const smtpCustom = smtp.mode === 'custom';
    const smtpMethod = smtp.method ?? 'password';
    const pick = (
      field: string,
      given: string | undefined,
      wanted: boolean,
      mayKeep: boolean,
      stored: string | null | undefined,
    ): string | null => {
      if (!wanted) return null;
      const ctx = { tenantId, rowId, field };
      if (given !== undefined) return this.sealer.seal(given, ctx);
      if (mayKeep && source && stored) {
        const plain = this.sealer.open(stored, { tenantId: source.tenantId, rowId: source.id, field });
        return this.sealer.seal(plain, ctx);
      }
      return null;
    };
    return {
      imapPasswordSealed: pick(
        'imap.password',
        imap.password,
        imap.method === 'password',
        keep.imapPassword,
        source?.imapPasswordSealed,
      ),
      imapClientSecretSealed: pick(
        'imap.clientSecret',
        imap.clientSecret,
        imap.method === 'oauth2' && (imap.flow === 'client-credentials' || imap.flow === 'service-account'),
        keep.imapClientSecret,
        source?.imapClientSecretSealed,
      ),
      smtpPasswordSealed: pick(
        'smtp.password',
        smtp.password,
        smtpCustom && smtpMethod === 'password',
        keep.smtpPassword,
        source?.smtpPasswordSealed,
      ),
      smtpClientSecretSealed: pick(
        'smtp.clientSecret',
        smtp.clientSecret,
        smtpCustom &&
          smtpMethod === 'oauth2' &&
          (smtp.flow === 'client-credentials' || smtp.flow === 'service-account'),
        keep.smtpClientSecret,
        source?.smtpClientSecretSealed,
      ),
    };
  }

  private async requireTenant(session: StoreSession, tenantId: string): Promise<void> {
    if (!(await session.tenants.get(tenantId))) throw tenantNotFound(tenantId);
  }

  private async requireServer(session: StoreSession, tenantId: string, serverId: string): Promise<EmailServerRow> {
    const row = await session.servers.get(tenantId, serverId);
    if (row) return row;
    await this.requireTenant(session, tenantId);
    throw new MailroomError('SERVER_NOT_FOUND', `e-mail server ${serverId} does not exist in this tenant`, {
      details: { serverId },
    });
  }
}
