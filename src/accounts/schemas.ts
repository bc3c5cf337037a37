import { Type, type Static } from '@sinclair/typebox';
import { PROXY_NAME } from '../shared/mail-proxies.js';
import { TLS_MODES } from '../shared/tls-mode.js';

/**
 * Input and output shapes of tenants, e-mail servers and destinations. The API declares them
 * (and publishes them in its OpenAPI document); the services validate with the same schemas,
 * so the CLI and the API accept exactly the same input. Schemas carry no defaults (a PATCH must
 * not grow fields it did not send): the services fill them in, as the comments say.
 */

const strict = { additionalProperties: false } as const;
/** A name people read: a visible character, no control, bidirectional-override or zero-width characters (validation.ts). */
const Name = Type.String({ minLength: 1, maxLength: 100, pattern: '\\S', format: 'display-name' });
const Host = Type.String({ format: 'host', maxLength: 253 });
const UserName = Type.String({ format: 'user-name', minLength: 1, maxLength: 320 });
const Port = Type.Integer({ minimum: 1, maximum: 65535 });
const Email = Type.String({ format: 'mail-address', maxLength: 320 });
const Secret = Type.String({ minLength: 1, maxLength: 4096 });
const Id = Type.String({ format: 'uuid' });

export const MAX_SERVERS_PER_TENANT = 5;
/**
 * API tokens a tenant may hold: the request and wait limits are per token, so an unbounded number
 * of tokens would leave a tenant's load unbounded (an outside review made 48 without a refusal).
 */
export const MAX_TOKENS_PER_TENANT = 50;
export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';
/** Google's OAuth 2.0 server, whose `/token` takes the service account's signed JWT. */
export const GOOGLE_AUTHORITY_HOST = 'https://oauth2.googleapis.com';

// ---- tenants ---------------------------------------------------------------------------------

export const TenantInput = Type.Object({ name: Name }, strict);
export type TenantInput = Static<typeof TenantInput>;
export const TenantPatch = Type.Partial(TenantInput, strict);
export type TenantPatch = Static<typeof TenantPatch>;

export const TenantView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
export type TenantView = Static<typeof TenantView>;

// ---- e-mail servers --------------------------------------------------------------------------

const OAuthFields = {
  /** Application (client) ID of the app registration. */
  clientId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  /** Directory (tenant) ID: a GUID or a verified domain. Never `common` when known. */
  directoryId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9.-]+$' })),
  /**
   * device-code (a person signs in), client-credentials (the app, Microsoft 365), service-account
   * (Google Workspace: `clientId` is the service account's e-mail, `clientSecret` its JSON key file
   * or PEM private key, `authorityHost` defaults to https://oauth2.googleapis.com).
   */
  flow: Type.Optional(
    Type.Union([Type.Literal('device-code'), Type.Literal('client-credentials'), Type.Literal('service-account')]),
  ),
  clientSecret: Type.Optional(Secret),
  authorityHost: Type.Optional(Type.String({ format: 'uri', pattern: '^https://', maxLength: 500 })),
  /** The Office 365 server the tokens are for (custom or sovereign clouds); default Exchange Online's. */
  serverUrl: Type.Optional(Type.String({ format: 'uri', pattern: '^https://[^/?#]+/?$', maxLength: 500 })),
};

export const ImapAuthInput = Type.Object(
  {
    method: Type.Union([Type.Literal('password'), Type.Literal('oauth2')]),
    password: Type.Optional(Secret),
    confirmPassword: Type.Optional(Secret),
    ...OAuthFields,
  },
  strict,
);

export const SmtpAuthInput = Type.Object(
  {
    /** none: no authentication; imap: the IMAP settings' credentials; custom: the fields below. */
    mode: Type.Union([Type.Literal('none'), Type.Literal('imap'), Type.Literal('custom')]),
    method: Type.Optional(Type.Union([Type.Literal('password'), Type.Literal('oauth2')])),
    user: Type.Optional(UserName),
    password: Type.Optional(Secret),
    confirmPassword: Type.Optional(Secret),
    ...OAuthFields,
  },
  strict,
);

/**
 * How the side's connection is encrypted (see `shared/tls-mode.ts`): `implicit` (TLS from the first
 * byte; STARTTLS, required, should the port answer in plain text), `starttls-required`,
 * `starttls-when-offered`, or `none` (plain text, never by default, always warned about). Without
 * it, `secure` decides as it always did: true `implicit`, false `starttls-when-offered`.
 */
const Tls = Type.Union(TLS_MODES.map((mode) => Type.Literal(mode)));

/** An absolute path of a PEM file of CA certificates, inside the engine's MAILROOM_CA_DIR; null = none. */
const CaFile = Type.Union([Type.String({ minLength: 1, maxLength: 4096, pattern: '^/' }), Type.Null()]);

export const ServerInput = Type.Object(
  {
    name: Name,
    enabled: Type.Optional(Type.Boolean()),
    imap: Type.Object(
      {
        host: Host,
        /** Default 993 with `tls: implicit`, 143 with the other modes. */
        port: Type.Optional(Port),
        /** Default `implicit` (or what `secure` says). */
        tls: Type.Optional(Tls),
        /** "Use SSL", the setting of old: true = `tls: implicit`, false = `tls: starttls-when-offered`. */
        secure: Type.Optional(Type.Boolean()),
        user: UserName,
        auth: ImapAuthInput,
        /** 0 = the engine's default. */
        maxSessions: Type.Optional(Type.Integer({ minimum: 0, maximum: 50 })),
        /**
         * Absolute path of a PEM file with CA certificates to trust for this server's TLS, besides
         * the usual roots (a private CA); null = none. Certificate verification always stays on.
         */
        caFile: Type.Optional(CaFile),
        /**
         * The folders watched, in this order; absent or empty: the engine's default (INBOX). On
         * Gmail a label is a folder: a message in several watched folders is routed once.
         */
        folders: Type.Optional(
          Type.Array(Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\r\\n]+$' }), { maxItems: 20 }),
        ),
      },
      strict,
    ),
    smtp: Type.Object(
      {
        host: Host,
        port: Port,
        /** Default `implicit` on port 465, else `starttls-when-offered` (or what `secure` says). */
        tls: Type.Optional(Tls),
        /** "Use SSL", the setting of old: true = `tls: implicit`, false = `tls: starttls-when-offered`. */
        secure: Type.Optional(Type.Boolean()),
        auth: SmtpAuthInput,
        heartbeatAddress: Type.Optional(Type.Union([Email, Type.Null()])),
        /** Messages per sliding hour; 0 = no limit. */
        rateLimitPerHour: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
        /** As `imap.caFile`, for the SMTP side's TLS (implicit or STARTTLS); null = none. */
        caFile: Type.Optional(CaFile),
      },
      strict,
    ),
    /** What happens to a message in the mailbox after it is stored: `seen`, `delete` or `move:<folder>`. */
    postProcess: Type.Optional(Type.String({ pattern: '^(seen|delete|move:[^\\r\\n]{1,200})$' })),
    /**
     * A destination that uses this server, receiving the messages that match no monitored
     * destination; null (default) puts them on the server's unrouted list.
     */
    defaultDestinationId: Type.Optional(Type.Union([Id, Type.Null()])),
    /**
     * The proxy IMAP and SMTP connections go through (HTTP CONNECT): null (default) for the
     * engine's default proxy (MAILROOM_MAIL_PROXY; a direct connection when it has none),
     * `none` for a direct connection, or a name of MAILROOM_PROXIES (`GET /api/v1/proxies`).
     */
    proxy: Type.Optional(Type.Union([Type.String({ pattern: PROXY_NAME.source }), Type.Null()])),
  },
  strict,
);
export type ServerInput = Static<typeof ServerInput>;

/** A PATCH body: any part of a server, merged into the stored one. */
export const ServerPatch = Type.Object(
  {
    name: Type.Optional(Name),
    enabled: Type.Optional(Type.Boolean()),
    imap: Type.Optional(Type.Partial(ServerInput.properties.imap, strict)),
    smtp: Type.Optional(Type.Partial(ServerInput.properties.smtp, strict)),
    postProcess: Type.Optional(ServerInput.properties.postProcess),
    defaultDestinationId: Type.Optional(ServerInput.properties.defaultDestinationId),
    proxy: Type.Optional(ServerInput.properties.proxy),
  },
  strict,
);
export type ServerPatch = Static<typeof ServerPatch>;

/** A copy: a new name, and any other changes (usually the account's user name and password). */
export const ServerCopy = Type.Composite([Type.Object({ name: Name }), Type.Omit(ServerPatch, ['name'])], strict);
export type ServerCopy = Static<typeof ServerCopy>;

const OAuthView = Type.Object({
  clientId: Type.String(),
  directoryId: Type.String(),
  flow: Type.String(),
  authorityHost: Type.String(),
  serverUrl: Type.Union([Type.String(), Type.Null()]),
  hasClientSecret: Type.Boolean(),
});

export const ServerView = Type.Object({
  id: Type.String(),
  tenantId: Type.String(),
  name: Type.String(),
  enabled: Type.Boolean(),
  imap: Type.Object({
    host: Type.String(),
    port: Type.Integer(),
    tls: Type.String(),
    /** `tls` is `implicit` (kept for clients of old). */
    secure: Type.Boolean(),
    user: Type.String(),
    auth: Type.Object({
      method: Type.String(),
      hasPassword: Type.Boolean(),
      oauth2: Type.Union([OAuthView, Type.Null()]),
    }),
    maxSessions: Type.Integer(),
    caFile: Type.Union([Type.String(), Type.Null()]),
    /** The folders watched; empty: the engine's default (INBOX). */
    folders: Type.Array(Type.String()),
  }),
  smtp: Type.Object({
    host: Type.String(),
    port: Type.Integer(),
    tls: Type.String(),
    secure: Type.Boolean(),
    auth: Type.Object({
      mode: Type.String(),
      method: Type.Union([Type.String(), Type.Null()]),
      user: Type.Union([Type.String(), Type.Null()]),
      hasPassword: Type.Boolean(),
      oauth2: Type.Union([OAuthView, Type.Null()]),
    }),
    heartbeatAddress: Type.Union([Type.String(), Type.Null()]),
    rateLimitPerHour: Type.Integer(),
    caFile: Type.Union([Type.String(), Type.Null()]),
  }),
  postProcess: Type.String(),
  defaultDestinationId: Type.Union([Type.String(), Type.Null()]),
  proxy: Type.Union([Type.String(), Type.Null()]),
  /** What an administrator should know about these settings, e.g. a side that sends in plain text. */
  warnings: Type.Array(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
export type ServerView = Static<typeof ServerView>;

/** The proxies a server can choose (`proxy`): the engine's default and the named ones; never a password. */
export const ProxyChoices = Type.Object({
  /** `http://host:port` of MAILROOM_MAIL_PROXY, taken when a server chooses none; null = connect directly. */
  default: Type.Union([Type.String(), Type.Null()]),
  /** MAILROOM_PROXIES, by name. */
  named: Type.Array(Type.Object({ name: Type.String(), proxy: Type.String() })),
});
export type ProxyChoices = Static<typeof ProxyChoices>;

// ---- destinations ----------------------------------------------------------------------------

/** [1000] most events in one batched webhook POST. */
export const WEBHOOK_BATCH_MAX_EVENTS = 1000;
/** [60000] longest a batching destination may let an event wait for others, ms. */
export const WEBHOOK_BATCH_MAX_WAIT_MS = 60_000;

export const WebhookBatch = Type.Object(
  {
    maxEvents: Type.Integer({ minimum: 1, maximum: WEBHOOK_BATCH_MAX_EVENTS }),
    maxWaitMs: Type.Integer({ minimum: 0, maximum: WEBHOOK_BATCH_MAX_WAIT_MS }),
  },
  strict,
);

export const DestinationInput = Type.Object(
  {
    name: Name,
    address: Email,
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    /** Display name in the From header of replies, e.g. "ACME Support". */
    fromText: Type.Optional(Type.String({ maxLength: 200, pattern: '^[^\\r\\n]*$' })),
    monitored: Type.Optional(Type.Boolean()),
    outgoing: Type.Optional(Type.Boolean()),
    /** The e-mail server whose mailbox receives (and whose SMTP sends) this address's mail. */
    serverId: Type.Union([Id, Type.Null()]),
    /** http(s) URL each routed message is POSTed to as a signed JSON event; null removes the webhook. */
    webhookUrl: Type.Optional(
      Type.Union([Type.String({ format: 'uri', pattern: '^[Hh][Tt][Tt][Pp][Ss]?://', maxLength: 2000 }), Type.Null()]),
    ),
    /** Write-only HMAC-SHA256 signing secret, required with the first `webhookUrl`; sealed, never shown. */
    webhookSecret: Type.Optional(Type.String({ minLength: 16, maxLength: 4096 })),
    /**
     * Opt-in batched delivery: one POST carries up to `maxEvents` events in order, sent when that
     * many wait or when the oldest has waited `maxWaitMs`; null: one POST per event.
     */
    webhookBatch: Type.Optional(Type.Union([WebhookBatch, Type.Null()])),
  },
  strict,
);
export type DestinationInput = Static<typeof DestinationInput>;
export const DestinationPatch = Type.Partial(DestinationInput, strict);
export type DestinationPatch = Static<typeof DestinationPatch>;
export const DestinationCopy = Type.Composite(
  [Type.Object({ name: Name, address: Email }), Type.Omit(DestinationPatch, ['name', 'address'])],
  strict,
);
export type DestinationCopy = Static<typeof DestinationCopy>;

export const DestinationView = Type.Object({
  id: Type.String(),
  tenantId: Type.String(),
  name: Type.String(),
  address: Type.String(),
  description: Type.String(),
  fromText: Type.String(),
  monitored: Type.Boolean(),
  outgoing: Type.Boolean(),
  serverId: Type.Union([Type.String(), Type.Null()]),
  webhookUrl: Type.Union([Type.String(), Type.Null()]),
  hasWebhookSecret: Type.Boolean(),
  webhookBatch: Type.Union([WebhookBatch, Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
export type DestinationView = Static<typeof DestinationView>;

// ---- API tokens ------------------------------------------------------------------------------

export const ApiTokenInput = Type.Object({ name: Name }, strict);
export type ApiTokenInput = Static<typeof ApiTokenInput>;
export const ApiTokenView = Type.Object({
  id: Type.String(),
  tenantId: Type.Union([Type.String(), Type.Null()]),
  name: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
export type ApiTokenView = Static<typeof ApiTokenView>;
