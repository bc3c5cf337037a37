import { Type, type Static } from '@sinclair/typebox';
import { MailroomError } from '../../shared/errors.js';
import { ServerParams } from '../params.js';
import type { OAuthApi, RouteContext, RouteDef } from '../route.js';

const tags = ['OAuth 2.0'];
const base = '/api/v1/tenants/:tenantId/servers/:serverId/oauth';
const strict = { additionalProperties: false } as const;

const Purpose = Type.Union([Type.Literal('imap'), Type.Literal('smtp')]);
const PurposeBody = Type.Object({ purpose: Purpose }, strict);
type PurposeBody = Static<typeof PurposeBody>;

const DeviceCodeView = Type.Object({
  purpose: Purpose,
  /** The code the person enters at `verificationUri`. */
  userCode: Type.String(),
  verificationUri: Type.String(),
  /** Seconds the code can be used for. */
  expiresIn: Type.Integer(),
  /** The identity provider's instructions, to show as they are. */
  message: Type.String(),
});

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const PurposeStatus = Type.Object({
  status: Type.Union(
    ['INCOMPLETE', 'PENDING', 'COMPLETE', 'EXPIRED', 'REAUTH_REQUIRED', 'ERROR'].map((s) => Type.Literal(s)),
  ),
  flow: Type.Union([Type.Literal('device-code'), Type.Literal('client-credentials'), Type.Literal('service-account')]),
  /** Who signed in: a person, `app <client id>` or `service account <e-mail>`. */
  account: Nullable(Type.String()),
  /** The mailbox the tokens open (a shared mailbox when a delegate signed in). */
  mailbox: Type.String(),
  expiresAt: Nullable(Type.String({ format: 'date-time' })),
  error: Nullable(Type.String()),
  sharesImapSignIn: Type.Boolean(),
});
const StatusView = Type.Object({
  imap: Type.Union([PurposeStatus, Type.Null()]),
  smtp: Type.Union([PurposeStatus, Type.Null()]),
});

function oauthOf(ctx: RouteContext): OAuthApi {
  if (!ctx.oauth) throw new MailroomError('UNAVAILABLE', 'OAuth 2.0 is not available in this engine');
  return ctx.oauth;
}

export const oauthRoutes: RouteDef[] = [
  {
    method: 'POST',
    url: `${base}/device-code`,
    access: 'tenant',
    summary:
      'Get Code: start a device-code sign-in for IMAP or SMTP (a new request cancels the one in progress). SMTP with mode imap uses the IMAP sign-in.',
    tags,
    errors: [
      'SERVER_NOT_FOUND',
      'OAUTH_NOT_CONFIGURED',
      'OAUTH_FAILED',
      'CONFLICT',
      'SECRET_UNREADABLE',
      'UNAVAILABLE',
    ],
    schema: { params: ServerParams, body: PurposeBody, response: { 200: DeviceCodeView } },
    handler: async (req, _reply, ctx) => {
      const p = req.params as ServerParams;
      return oauthOf(ctx).startDeviceCode(p.tenantId, p.serverId, (req.body as PurposeBody).purpose);
    },
  },
  {
    method: 'GET',
    url: base,
    access: 'tenant',
    summary: 'OAuth 2.0 status per purpose: INCOMPLETE, PENDING, COMPLETE, EXPIRED, REAUTH_REQUIRED or ERROR.',
    tags,
    errors: ['SERVER_NOT_FOUND', 'UNAVAILABLE'],
    schema: { params: ServerParams, response: { 200: StatusView } },
    handler: async (req, _reply, ctx) => {
      const p = req.params as ServerParams;
      return oauthOf(ctx).status(p.tenantId, p.serverId);
    },
  },
  {
    method: 'POST',
    url: `${base}/test`,
    access: 'tenant',
    summary:
      'Acquire a fresh access token now and report the status (what failed, in words an administrator can act on).',
    tags,
    errors: [
      'SERVER_NOT_FOUND',
      'OAUTH_NOT_CONFIGURED',
      'OAUTH_FAILED',
      'CREDENTIALS_UNAVAILABLE',
      'SECRET_UNREADABLE',
      'UNAVAILABLE',
    ],
    schema: { params: ServerParams, body: PurposeBody, response: { 200: Type.Union([PurposeStatus, Type.Null()]) } },
    handler: async (req, _reply, ctx) => {
      const p = req.params as ServerParams;
      return oauthOf(ctx).test(p.tenantId, p.serverId, (req.body as PurposeBody).purpose);
    },
  },
];
