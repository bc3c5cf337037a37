import { folderKey, moveTarget, movesIntoWatched } from '../shared/imap-folders.js';
import { isMailroomError, MailroomError } from '../shared/errors.js';
import { tlsModeOfSecure, type TlsMode } from '../shared/tls-mode.js';
import type { OAuthPurpose } from '../store/oauth-grants.js';
import type { EmailServerRow, OAuthSettings } from '../store/rows.js';
import { parseServiceAccountKey, type ServiceAccountKey } from '../shared/service-account-key.js';
import { accountKeyOf } from '../shared/host-key.js';
import { DEFAULT_AUTHORITY_HOST, GOOGLE_AUTHORITY_HOST, type ServerInput, type ServerPatch } from './schemas.js';
import { nameKeyOf } from '../shared/name-key.js';

/**
 * Pure rules of the e-mail server form: cross-field checks the schema cannot express, defaults,
 * the merge of a PATCH into the stored server, and which stored secrets survive a change.
 */

type AuthFields = ServerInput['imap']['auth'] | ServerInput['smtp']['auth'];
const OAUTH_FIELDS = ['clientId', 'directoryId', 'flow', 'clientSecret', 'authorityHost', 'serverUrl'] as const;
const PASSWORD_FIELDS = ['password', 'confirmPassword'] as const;

function fieldError(field: string, message: string): MailroomError {
  return new MailroomError('VALIDATION_FAILED', message, { field });
}

function refuse(auth: AuthFields, prefix: string, fields: readonly string[], why: string): void {
  for (const f of fields) {
    if ((auth as Record<string, unknown>)[f] !== undefined)
      throw fieldError(`${prefix}.${f}`, `'${prefix}.${f}' ${why}`);
  }
}

/** Checks one side's credentials fields; `hasStoredSecret` says whether a secret can be kept. */
function checkCredentials(
  auth: AuthFields,
  method: 'password' | 'oauth2',
  prefix: string,
  stored: { password: boolean; clientSecret: boolean; dropped?: string | undefined },
): void {
  const again = stored.dropped === undefined ? '' : ` again: ${stored.dropped}`;
  if (method === 'password') {
    refuse(auth, prefix, OAUTH_FIELDS, 'is only used with method oauth2');
    if (auth.password === undefined && !stored.password) {
      throw fieldError(`${prefix}.password`, `'${prefix}.password' is required${again}`);
    }
    if (auth.confirmPassword !== undefined && auth.confirmPassword !== auth.password) {
      throw fieldError(`${prefix}.confirmPassword`, `'${prefix}.confirmPassword' does not match the password`);
    }
    return;
  }
  refuse(auth, prefix, PASSWORD_FIELDS, 'is only used with method password');
  checkAuthorityHost(auth.authorityHost, `${prefix}.authorityHost`);
  if (auth.flow === 'service-account') return checkServiceAccount(auth, prefix, stored.clientSecret, again);
  if (auth.clientId === undefined)
    throw fieldError(`${prefix}.clientId`, `'${prefix}.clientId' is required for OAuth 2.0`);
  if (auth.directoryId === undefined) {
    throw fieldError(
      `${prefix}.directoryId`,
      `'${prefix}.directoryId' is required for OAuth 2.0 (the Directory (tenant) ID)`,
    );
  }
  if ((auth.flow ?? 'device-code') === 'client-credentials') {
    if (auth.clientSecret === undefined && !stored.clientSecret) {
      throw fieldError(
        `${prefix}.clientSecret`,
        `'${prefix}.clientSecret' is required for the client-credentials flow${again}`,
      );
    }
  } else if (auth.clientSecret !== undefined) {
    throw fieldError(`${prefix}.clientSecret`, `'${prefix}.clientSecret' is only used with flow client-credentials`);
  }
}

/**
 * An OAuth 2.0 authority is `https://` and a host (and a port): nothing else. A user name and
 * password, a path, a query or a fragment were accepted and shown back in views and the audit
 * log (issue 24 review); the engine builds the paths itself. A trailing `/` is left out when stored.
 */
export function checkAuthorityHost(value: string | undefined, field: string): void {
  if (value === undefined) return;
  let url: URL | undefined;
  try {
    url = /^https:\/\/[^/?#@\\\s]+\/*$/i.test(value) ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    url.username !== '' ||
    url.password !== '' ||
    url.pathname !== '/' ||
    url.search !== '' ||
    url.hash !== '' ||
    url.port === '0'
  ) {
    throw fieldError(
      field,
      `'${field}' must be https:// and a host name, with a port if needed (e.g. https://login.microsoftonline.com): ` +
        'no user name or password, path, query or fragment',
    );
  }
}

/**
 * Google Workspace: the service account's e-mail (the JWT's `iss`) and its key (a JSON key file or
 * a PEM private key, sealed as the client secret). No directory: Google has none to name.
 */
function checkServiceAccount(auth: AuthFields, prefix: string, storedKey: boolean, again: string): void {
  if (auth.clientId === undefined) {
    throw fieldError(
      `${prefix}.clientId`,
      `'${prefix}.clientId' is required for flow service-account (the service account's e-mail, client_email of its key file)`,
    );
  }
  refuse(auth, prefix, ['directoryId', 'serverUrl'], 'is not used with flow service-account (Google Workspace)');
  if (auth.clientSecret === undefined) {
    if (storedKey) return;
    throw fieldError(
      `${prefix}.clientSecret`,
      `'${prefix}.clientSecret' is required for flow service-account: the service account's JSON key file (or its PEM private key)${again}`,
    );
  }
  let key: ServiceAccountKey;
  try {
    key = parseServiceAccountKey(auth.clientSecret);
  } catch (err) {
    throw fieldError(`${prefix}.clientSecret`, `'${prefix}.clientSecret' ${(err as Error).message}`);
  }
  if (key.clientEmail !== undefined && key.clientEmail.toLowerCase() !== auth.clientId.toLowerCase()) {
    throw fieldError(
      `${prefix}.clientId`,
      `'${prefix}.clientId' is ${auth.clientId}, but the key file belongs to ${key.clientEmail}`,
    );
  }
}

/** [15] Gmail's limit of simultaneous IMAP connections per account (Google Workspace Admin Help, "IMAP connection limits"). */
export const GMAIL_MAX_SESSIONS = 15;

/** A Gmail mailbox: Google's IMAP host, or a Google service account's sign-in. */
function isGmail(input: ServerInput): boolean {
  const host = input.imap.host.toLowerCase().replace(/\.$/, '');
  return host === 'imap.gmail.com' || host === 'imap.googlemail.com' || input.imap.auth.flow === 'service-account';
}

/**
 * Gmail's folder of every message (RFC 6154 `\\All`: https://developers.google.com/gmail/imap/imap-extensions
 * lists it as `[Gmail]/All Mail`; `[Google Mail]` in some countries). Not watched: it also holds
 * the mailbox's sent mail (the engine's own replies) and drafts. A localised name is found by its
 * special use when the folder is opened (`inbound/mailbox-sync.ts`).
 */
const ALL_MAIL = /^\[(gmail|google mail)\]\/all mail$/i;

/** The folders a server without `imap.folders` watches (the engine's default). */
const DEFAULT_FOLDERS = ['INBOX'];

/** Mail is not moved into a folder the server watches: it would be read there again, and moved again. */
function checkMoveTarget(input: ServerInput): void {
  const postProcess = input.postProcess ?? 'seen';
  const folders = input.imap.folders?.length ? input.imap.folders : DEFAULT_FOLDERS;
  if (movesIntoWatched(postProcess, folders)) {
    throw fieldError(
      'postProcess',
      `'postProcess' cannot move mail into '${moveTarget(postProcess) ?? ''}', a folder this server watches ` +
        `(${folders.join(', ')}): the moved mail would be read there again and moved again; move it to a folder not watched`,
    );
  }
}

/** The watched folders: each once, none of them Gmail's All Mail. */
function checkFolders(folders: readonly string[]): void {
  const seen = new Set<string>();
  for (const folder of folders) {
    const key = folderKey(folder);
    if (seen.has(key)) throw fieldError('imap.folders', `'imap.folders' names '${folder}' twice`);
    seen.add(key);
    if (ALL_MAIL.test(folder.trim())) {
      throw fieldError(
        'imap.folders',
        `'imap.folders' cannot watch '${folder}': it holds every message of the mailbox, its sent mail and drafts too; ` +
          'watch INBOX and the labels mail arrives in (a message in several of them is routed once)',
      );
    }
  }
}

export interface StoredSecrets {
  imapPassword: boolean;
  imapClientSecret: boolean;
  smtpPassword: boolean;
  smtpClientSecret: boolean;
  /** Why a side's stored secret may not be kept, for the message asking for it again. */
  imapDropped?: string;
  smtpDropped?: string;
}

export const NO_STORED_SECRETS: StoredSecrets = {
  imapPassword: false,
  imapClientSecret: false,
  smtpPassword: false,
  smtpClientSecret: false,
};

/**
 * The SMTP side signing in with OAuth 2.0 of its own ("Use settings below") takes the app
 * registration (client id, directory id, authority) of the IMAP side when it names none: the
 * reference's SMTP form asks only for the user name and its own Get Code, as both sides are
 * normally the same app of the same directory.
 */
export function withInheritedSmtpApp(input: ServerInput): ServerInput {
  const imap = input.imap.auth;
  const smtp = input.smtp.auth;
  if (smtp.mode !== 'custom' || smtp.method !== 'oauth2' || imap.method !== 'oauth2') return input;
  return {
    ...input,
    smtp: {
      ...input.smtp,
      auth: {
        ...smtp,
        clientId: smtp.clientId ?? imap.clientId,
        directoryId: smtp.directoryId ?? imap.directoryId,
        ...((smtp.authorityHost ?? imap.authorityHost) !== undefined && {
          authorityHost: smtp.authorityHost ?? imap.authorityHost,
        }),
        ...((smtp.serverUrl ?? imap.serverUrl) !== undefined && { serverUrl: smtp.serverUrl ?? imap.serverUrl }),
      },
    },
  };
}

/** The IMAP side's TLS mode: `tls`, else what `secure` says, else `implicit`. */
export function imapTlsOf(imap: Pick<ServerInput['imap'], 'tls' | 'secure'>): TlsMode {
  return imap.tls ?? tlsModeOfSecure(imap.secure ?? true);
}

/** The SMTP side's TLS mode: `tls`, else what `secure` says, else `implicit` on port 465 only. */
export function smtpTlsOf(smtp: Pick<ServerInput['smtp'], 'tls' | 'secure' | 'port'>): TlsMode {
  return smtp.tls ?? tlsModeOfSecure(smtp.secure ?? smtp.port === 465);
}

/** `secure` and `tls` both given must say the same (`secure: true` is `tls: implicit`). */
function checkTls(side: 'imap' | 'smtp', fields: { tls?: TlsMode | undefined; secure?: boolean | undefined }): void {
  if (fields.tls === undefined || fields.secure === undefined) return;
  if ((fields.tls === 'implicit') !== fields.secure) {
    throw fieldError(
      `${side}.tls`,
      `'${side}.tls' is '${fields.tls}' but '${side}.secure' is ${fields.secure}: give only 'tls' ` +
        `('secure: true' means 'tls: implicit', 'secure: false' means 'tls: starttls-when-offered')`,
    );
  }
}

/**
 * Microsoft Graph (`protocol: graph`) signs in with OAuth 2.0 only (Graph takes no password) and
 * sends with the same sign-in (sendMail), over HTTPS: `imap.auth.method` oauth2 with a Microsoft
 * flow, `smtp.auth.mode` imap, `imap.tls` implicit.
 */
function checkGraph(input: ServerInput): void {
  if (input.protocol !== 'graph') return;
  if (input.imap.auth.method !== 'oauth2' || input.imap.auth.flow === 'service-account') {
    throw fieldError(
      'imap.auth.method',
      `'imap.auth.method' must be oauth2 with flow device-code or client-credentials for protocol graph (Microsoft Graph takes no password)`,
    );
  }
  if (input.smtp.auth.mode !== 'imap') {
    throw fieldError(
      'smtp.auth.mode',
      `'smtp.auth.mode' must be imap for protocol graph (sendMail goes through Graph with the same sign-in)`,
    );
  }
  if (imapTlsOf(input.imap) !== 'implicit') {
    throw fieldError('imap.tls', `'imap.tls' must be implicit for protocol graph (Graph is HTTPS)`);
  }
}

/**
 * The cross-field rules, each on its own: `stored` says which secrets the server already has and
 * may keep. Each rule names the first fault of its part (one side's credentials, one side's TLS).
 */
function crossChecks(input: ServerInput, stored: StoredSecrets): Array<() => void> {
  return [
    () => checkGraph(input),
    () => checkTls('imap', input.imap),
    () => checkTls('smtp', input.smtp),
    () => checkFolders(input.imap.folders ?? []),
    () => checkMoveTarget(input),
    () => {
      if (isGmail(input) && (input.imap.maxSessions ?? 0) > GMAIL_MAX_SESSIONS) {
        throw fieldError(
          'imap.maxSessions',
          `'imap.maxSessions' must be at most ${GMAIL_MAX_SESSIONS} for Gmail, which allows ${GMAIL_MAX_SESSIONS} simultaneous IMAP connections per account`,
        );
      }
    },
    () =>
      checkCredentials(input.imap.auth, input.imap.auth.method, 'imap.auth', {
        password: stored.imapPassword,
        clientSecret: stored.imapClientSecret,
        dropped: stored.imapDropped,
      }),
    () => {
      const smtp = input.smtp.auth;
      if (smtp.mode === 'custom') {
        if (smtp.user === undefined) {
          throw fieldError('smtp.auth.user', `'smtp.auth.user' is required when mode is custom`);
        }
      } else if (smtp.mode === 'imap' || smtp.mode === 'none') {
        const why = `is only used with mode custom (mode '${smtp.mode}' ${smtp.mode === 'imap' ? 'uses the IMAP credentials' : 'sends without authentication'})`;
        refuse(smtp, 'smtp.auth', ['method', 'user', ...PASSWORD_FIELDS, ...OAUTH_FIELDS], why);
      }
    },
    () => {
      const smtp = input.smtp.auth;
      if (smtp.mode !== 'custom') return;
      checkCredentials(smtp, smtp.method ?? 'password', 'smtp.auth', {
        password: stored.smtpPassword,
        clientSecret: stored.smtpClientSecret,
        dropped: stored.smtpDropped,
      });
    },
  ];
}

/** Every field at fault of the cross-field rules, in the form's order (see `crossChecks`). */
function faultsOf(checks: Array<() => void>, strict: boolean): Array<{ field: string; message: string }> {
  const faults: Array<{ field: string; message: string }> = [];
  for (const check of checks) {
    try {
      check();
    } catch (err) {
      // On a body the schema refused, a rule that meets a malformed part has nothing to add.
      if (!isMailroomError(err)) {
        if (strict) throw err;
        continue;
      }
      const field = err.field ?? '';
      if (!faults.some((f) => f.field === field)) faults.push({ field, message: err.message });
    }
  }
  return faults;
}

/** Cross-field rules; `stored` says which secrets the server already has and may keep. Every fault at once. */
export function checkServerInput(input: ServerInput, stored: StoredSecrets = NO_STORED_SECRETS): void {
  const faults = faultsOf(crossChecks(input, stored), true);
  const [first] = faults;
  if (!first) return;
  if (faults.length === 1) throw fieldError(first.field, first.message);
  throw new MailroomError('VALIDATION_FAILED', faults.map((f) => f.message).join('; '), {
    field: first.field,
    details: { errors: faults },
  });
}

/**
 * The cross-field faults of a new server's body that its schema refused (a port out of range):
 * told with the schema's, so that one answer names every field at fault. Best effort: the rules
 * run on the raw body, and one that meets a part of the wrong shape says nothing.
 */
export function serverBodyFaults(body: unknown): Array<{ field: string; message: string }> {
  const b = body as { imap?: { auth?: unknown }; smtp?: { auth?: unknown } } | null;
  if (typeof b !== 'object' || b === null) return [];
  if (typeof b.imap?.auth !== 'object' || typeof b.smtp?.auth !== 'object') return [];
  return faultsOf(crossChecks(b as ServerInput, NO_STORED_SECRETS), false);
}

export function normalizeKey(value: string): string {
  return value.trim().toLowerCase();
}

/** The key of one mail account, unique across tenants: its canonical IMAP host and user name (shared/host-key.ts). */
export { accountKeyOf };

function oauthOf(auth: AuthFields): OAuthSettings {
  const google = auth.flow === 'service-account';
  return {
    clientId: auth.clientId as string,
    directoryId: google ? '' : (auth.directoryId as string),
    flow: auth.flow ?? 'device-code',
    authorityHost: (auth.authorityHost ?? (google ? GOOGLE_AUTHORITY_HOST : DEFAULT_AUTHORITY_HOST)).replace(
      /\/+$/,
      '',
    ),
    ...(auth.serverUrl !== undefined && { serverUrl: auth.serverUrl.replace(/\/+$/, '') }),
  };
}

/** The row's non-secret columns for a validated input (defaults applied). */
export function rowFieldsOf(
  input: ServerInput,
): Omit<
  EmailServerRow,
  | 'id'
  | 'tenantId'
  | 'createdAt'
  | 'updatedAt'
  | 'imapPasswordSealed'
  | 'imapClientSecretSealed'
  | 'smtpPasswordSealed'
  | 'smtpClientSecretSealed'
  | 'hostsByTenant'
> {
  const imapTls = imapTlsOf(input.imap);
  const smtpTls = smtpTlsOf(input.smtp);
  const smtpAuth = input.smtp.auth;
  const custom = smtpAuth.mode === 'custom';
  const smtpMethod = custom ? (smtpAuth.method ?? 'password') : null;
  return {
    name: input.name.trim(),
    nameKey: nameKeyOf(input.name),
    enabled: input.enabled ?? true,
    protocol: input.protocol ?? 'imap',
    imapHost: input.imap.host,
    imapPort: input.imap.port ?? (input.protocol === 'graph' ? 443 : imapTls === 'implicit' ? 993 : 143),
    imapSecure: imapTls === 'implicit',
    imapTls,
    imapUser: input.imap.user,
    imapAuthMethod: input.imap.auth.method,
    imapOAuth: input.imap.auth.method === 'oauth2' ? oauthOf(input.imap.auth) : null,
    imapMaxSessions: input.imap.maxSessions ?? 0,
    imapFolders: input.imap.folders ?? [],
    accountKey: accountKeyOf(input.imap.host, input.imap.user),
    smtpHost: input.smtp.host,
    smtpPort: input.smtp.port,
    smtpSecure: smtpTls === 'implicit',
    smtpTls,
    smtpAuthMode: smtpAuth.mode,
    smtpAuthMethod: smtpMethod,
    smtpUser: custom ? (smtpAuth.user ?? null) : null,
    smtpOAuth: smtpMethod === 'oauth2' ? oauthOf(smtpAuth) : null,
    smtpHeartbeatAddress: input.smtp.heartbeatAddress ?? null,
    smtpRateLimitPerHour: input.smtp.rateLimitPerHour ?? 0,
    postProcess: input.postProcess ?? 'seen',
    imapCaFile: input.imap.caFile ?? null,
    smtpCaFile: input.smtp.caFile ?? null,
    defaultDestinationId: input.defaultDestinationId ?? null,
    proxy: input.proxy ?? null,
  };
}

function oauthInputOf(o: OAuthSettings | null): Partial<AuthFields> {
  return o
    ? {
        clientId: o.clientId,
        ...(o.flow !== 'service-account' && { directoryId: o.directoryId }),
        flow: o.flow,
        authorityHost: o.authorityHost,
        ...(o.serverUrl !== undefined && { serverUrl: o.serverUrl }),
      }
    : {};
}

/** The stored server as a form (secrets left out), ready to take a PATCH. */
export function formOf(row: EmailServerRow): ServerInput {
  const smtpAuth: ServerInput['smtp']['auth'] =
    row.smtpAuthMode === 'custom'
      ? {
          mode: 'custom',
          method: row.smtpAuthMethod ?? 'password',
          user: row.smtpUser ?? '',
          ...oauthInputOf(row.smtpOAuth),
        }
      : { mode: row.smtpAuthMode };
  return {
    name: row.name,
    enabled: row.enabled,
    protocol: row.protocol,
    imap: {
      host: row.imapHost,
      port: row.imapPort,
      tls: row.imapTls,
      user: row.imapUser,
      auth: { method: row.imapAuthMethod, ...oauthInputOf(row.imapOAuth) },
      maxSessions: row.imapMaxSessions,
      caFile: row.imapCaFile,
      folders: row.imapFolders,
    },
    smtp: {
      host: row.smtpHost,
      port: row.smtpPort,
      tls: row.smtpTls,
      auth: smtpAuth,
      heartbeatAddress: row.smtpHeartbeatAddress,
      rateLimitPerHour: row.smtpRateLimitPerHour,
      caFile: row.smtpCaFile,
    },
    postProcess: row.postProcess,
    defaultDestinationId: row.defaultDestinationId,
    proxy: row.proxy,
  };
}

function mergeAuth<A extends AuthFields>(current: A, patch: Partial<A> | undefined, kind: 'method' | 'mode'): A {
  if (!patch) return current;
  const switching =
    (patch as Record<string, unknown>)[kind] !== undefined &&
    (patch as Record<string, unknown>)[kind] !== (current as Record<string, unknown>)[kind];
  if (kind === 'mode' && !switching && patch.method !== undefined && patch.method !== current.method) {
    return { mode: 'custom', ...patch } as A; // custom credentials changing method: start afresh
  }
  return (switching ? { ...patch } : { ...current, ...patch }) as A;
}

/** Applies a PATCH (or copy overrides) to a form. Changing an auth method replaces that auth object. */
export function mergeServer(current: ServerInput, patch: ServerPatch): ServerInput {
  const imapPatch = patch.imap ?? {};
  const smtpPatch = patch.smtp ?? {};
  const merged: ServerInput = {
    ...current,
    ...(patch.name !== undefined && { name: patch.name }),
    ...(patch.enabled !== undefined && { enabled: patch.enabled }),
    ...(patch.protocol !== undefined && { protocol: patch.protocol }),
    ...(patch.postProcess !== undefined && { postProcess: patch.postProcess }),
    ...(patch.defaultDestinationId !== undefined && { defaultDestinationId: patch.defaultDestinationId }),
    ...(patch.proxy !== undefined && { proxy: patch.proxy }),
    imap: { ...current.imap, ...imapPatch, auth: mergeAuth(current.imap.auth, imapPatch.auth, 'method') },
    smtp: { ...current.smtp, ...smtpPatch, auth: mergeAuth(current.smtp.auth, smtpPatch.auth, 'mode') },
  };
  // `secure` alone (the setting of old) chooses the mode, as on create; `tls` alone replaces it.
  if (imapPatch.secure !== undefined && imapPatch.tls === undefined) delete merged.imap.tls;
  if (imapPatch.tls !== undefined && imapPatch.secure === undefined) delete merged.imap.secure;
  if (smtpPatch.secure !== undefined && smtpPatch.tls === undefined) delete merged.smtp.tls;
  if (smtpPatch.tls !== undefined && smtpPatch.secure === undefined) delete merged.smtp.secure;
  // A port that was only the default follows a change between implicit TLS and the other modes.
  const wasImplicit = imapTlsOf(current.imap) === 'implicit';
  const implicit = imapTlsOf(merged.imap) === 'implicit';
  if (imapPatch.port === undefined && implicit !== wasImplicit && [993, 143].includes(current.imap.port ?? 0)) {
    merged.imap.port = implicit ? 993 : 143;
  }
  // SMTP has no default port, but its mode defaults from it (465: implicit TLS): a mode that was
  // only that default follows a change of the port, as it does when the server is created.
  if (
    smtpPatch.port !== undefined &&
    smtpPatch.secure === undefined &&
    smtpPatch.tls === undefined &&
    smtpTlsOf(current.smtp) === smtpTlsOf({ port: current.smtp.port })
  ) {
    delete merged.smtp.tls;
    delete merged.smtp.secure;
  }
  return merged;
}

type ServerFields = ReturnType<typeof rowFieldsOf>;

function sameHost(a: string, b: string): boolean {
  return normalizeKey(a) === normalizeKey(b);
}

function sameApp(a: OAuthSettings | null, b: OAuthSettings | null): boolean {
  return (
    a !== null &&
    b !== null &&
    a.clientId === b.clientId &&
    a.directoryId === b.directoryId &&
    a.authorityHost === b.authorityHost &&
    a.flow === b.flow
  );
}

/**
 * Where and how a side's credentials travel: the host, port and transport security they were
 * entered for, and the proxy they pass through. A stored secret (password, client secret, or the
 * tokens of a sign-in) is only ever sent to the exact endpoint it was entered for; a change of any
 * part asks for it again, so that no one can turn a stored password to another port, to clear text
 * or through another proxy (issue #24). A new transport setting joins here.
 */
interface Endpoint {
  host: string;
  port: number;
  /** How the side is encrypted (implicit, STARTTLS required or when offered, none). */
  tls: TlsMode;
  /** The side's CA file (which certificates are trusted). */
  caFile: string | null;
  /** The server's proxy choice (null: the engine's default). */
  proxy: string | null;
}

function imapEndpoint(f: ServerFields): Endpoint {
  return { host: f.imapHost, port: f.imapPort, tls: f.imapTls, caFile: f.imapCaFile, proxy: f.proxy };
}

function smtpEndpoint(f: ServerFields): Endpoint {
  return { host: f.smtpHost, port: f.smtpPort, tls: f.smtpTls, caFile: f.smtpCaFile, proxy: f.proxy };
}

/** What differs between two endpoints, in words ("port and TLS"), or null when they are the same. */
function endpointChange(a: Endpoint, b: Endpoint): string | null {
  const changed = [
    !sameHost(a.host, b.host) && 'host',
    a.port !== b.port && 'port',
    a.tls !== b.tls && 'TLS setting',
    a.caFile !== b.caFile && 'CA file',
    a.proxy !== b.proxy && 'proxy',
  ].filter((c): c is string => c !== false);
  if (changed.length === 0) return null;
  return changed.length === 1 ? changed[0]! : `${changed.slice(0, -1).join(', ')} and ${changed.at(-1)!}`;
}

const NEVER_FOLLOWS =
  'and a stored secret is only sent to the endpoint and transport security it was entered for; enter it again';

function describe(e: Endpoint): string {
  return `${e.host}:${e.port}`;
}

/**
 * Why the IMAP credentials (password, client secret or sign-in) would now be presented somewhere
 * they were not before, or null when they stay put: another IMAP user name or endpoint (host,
 * port, TLS, CA, proxy), or an SMTP endpoint that logs in with them (`mode: imap`) and did not before.
 */
function imapMoved(row: ServerFields, next: ServerFields): string | null {
  if (row.imapUser !== next.imapUser) {
    return 'the IMAP user name changed, and stored credentials never follow an account to a new place';
  }
  const imap = endpointChange(imapEndpoint(row), imapEndpoint(next));
  if (imap !== null) return `the IMAP ${imap} changed, ${NEVER_FOLLOWS}`;
  if (next.smtpAuthMode === 'imap') {
    const smtp = row.smtpAuthMode === 'imap' ? endpointChange(smtpEndpoint(row), smtpEndpoint(next)) : 'auth mode';
    if (smtp !== null) {
      return (
        `SMTP (auth mode imap) logs in to ${describe(smtpEndpoint(next))} with the IMAP credentials, which were not ` +
        `sent there before (its ${smtp} changed), ${NEVER_FOLLOWS}`
      );
    }
  }
  return null;
}

/** The same for the SMTP side's own credentials (`mode: custom`): another SMTP user name or endpoint. */
function smtpMoved(row: ServerFields, next: ServerFields): string | null {
  if (row.smtpUser !== next.smtpUser) {
    return 'the SMTP user name changed, and stored credentials never follow an account to a new place';
  }
  const smtp = endpointChange(smtpEndpoint(row), smtpEndpoint(next));
  return smtp === null ? null : `the SMTP ${smtp} changed, ${NEVER_FOLLOWS}`;
}

/**
 * Which stored secrets the changed server may keep. A secret stays only while it would go to
 * the same place: the same host and user name (and, for a client secret, the same app
 * registration). Pointing an account elsewhere needs the secret entered again, so that no one
 * can redirect a stored password to a host of their choosing. With SMTP `mode: imap` the IMAP
 * credentials also go to the SMTP host: a new SMTP host (or switching to `mode: imap`) needs
 * them again too. The place is the whole endpoint: host, port, TLS, CA and proxy (see `Endpoint`).
 */
export function keepableSecrets(row: EmailServerRow, next: ServerFields): StoredSecrets {
  const imapWhy = imapMoved(row, next);
  const smtpWhy = smtpMoved(row, next);
  const hadImapSecret = row.imapPasswordSealed !== null || row.imapClientSecretSealed !== null;
  const hadSmtpSecret = row.smtpPasswordSealed !== null || row.smtpClientSecretSealed !== null;
  return {
    imapPassword:
      imapWhy === null &&
      row.imapAuthMethod === 'password' &&
      next.imapAuthMethod === 'password' &&
      row.imapPasswordSealed !== null,
    imapClientSecret: imapWhy === null && sameApp(row.imapOAuth, next.imapOAuth) && row.imapClientSecretSealed !== null,
    smtpPassword:
      smtpWhy === null &&
      row.smtpAuthMethod === 'password' &&
      next.smtpAuthMethod === 'password' &&
      row.smtpPasswordSealed !== null,
    smtpClientSecret: smtpWhy === null && sameApp(row.smtpOAuth, next.smtpOAuth) && row.smtpClientSecretSealed !== null,
    ...(imapWhy !== null && hadImapSecret && { imapDropped: imapWhy }),
    ...(smtpWhy !== null && hadSmtpSecret && { smtpDropped: smtpWhy }),
  };
}

/**
 * The OAuth 2.0 sign-ins (grants, by purpose) a change voids: a sign-in belongs to an app
 * registration, a mailbox user and the hosts its tokens are presented to, as a stored password
 * does. A side that leaves OAuth 2.0, changes app, or points its tokens elsewhere (see
 * `keepableSecrets`) must sign in again.
 */
export function voidedSignIns(row: EmailServerRow, next: ServerFields): OAuthPurpose[] {
  const voided: OAuthPurpose[] = [];
  if (row.imapOAuth !== null && (!sameApp(row.imapOAuth, next.imapOAuth) || imapMoved(row, next) !== null)) {
    voided.push('imap');
  }
  if (row.smtpOAuth !== null && (!sameApp(row.smtpOAuth, next.smtpOAuth) || smtpMoved(row, next) !== null)) {
    voided.push('smtp');
  }
  return voided;
}
