import { sign } from 'node:crypto';
import type { INetworkModule } from '@azure/msal-node';
import type { ServiceAccountKey } from '../../shared/service-account-key.js';
import type { OAuthFailure } from './describe-error.js';

/**
 * Google Workspace service accounts with domain-wide delegation: an access token for one mailbox
 * through the JWT bearer grant (RFC 7523), as Google's "Using OAuth 2.0 for Server to Server
 * Applications" (https://developers.google.com/identity/protocols/oauth2/service-account,
 * "Preparing to make an delegated API call" / "Using HTTP/REST") describes it:
 *
 * - a JWT with header `{"alg":"RS256","typ":"JWT"}` (and `kid`, the key's id, when known) and the
 *   claims `iss` (the service account's e-mail), `scope`, `aud` (the token endpoint,
 *   `https://oauth2.googleapis.com/token`), `iat` and `exp` (at most one hour after `iat`), and
 *   `sub`: the user whose data is accessed ("the email address of the user for which the
 *   application is requesting delegated access");
 * - signed with the service account's private key (RSA SHA-256), base64url parts joined by dots;
 * - posted as a form, `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`;
 * - answered `{"access_token", "token_type": "Bearer", "expires_in", "scope"}`; no refresh token:
 *   a new assertion is signed when the token runs out.
 *
 * The scope `https://mail.google.com/` is what Gmail's IMAP and SMTP accept with XOAUTH2
 * (https://developers.google.com/workspace/gmail/imap/xoauth2-protocol).
 */

/** Full access to Gmail, the one scope IMAP and SMTP take. */
export const GMAIL_SCOPE = 'https://mail.google.com/';
/** RFC 7523 §2.1. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** [3600] lifetime asked for the assertion, s (Google's maximum). */
const ASSERTION_LIFETIME_SECONDS = 3600;

export interface AssertionClaims {
  /** The service account's e-mail (`iss`). */
  issuer: string;
  /** The mailbox (`sub`). */
  subject: string;
  /** The token endpoint (`aud`). */
  audience: string;
  scope: string;
  nowSeconds: number;
}

/** The signed JWT (RS256) for the token endpoint. */
export function signedAssertion(key: ServiceAccountKey, claims: AssertionClaims): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const header = part({ alg: 'RS256', typ: 'JWT', ...(key.keyId !== undefined && { kid: key.keyId }) });
  const body = part({
    iss: claims.issuer,
    sub: claims.subject,
    scope: claims.scope,
    aud: claims.audience,
    iat: claims.nowSeconds,
    exp: claims.nowSeconds + ASSERTION_LIFETIME_SECONDS,
  });
  const signature = sign('RSA-SHA256', Buffer.from(`${header}.${body}`), key.privateKey).toString('base64url');
  return `${header}.${body}.${signature}`;
}

/** The token endpoint of an authority host: Google's is `https://oauth2.googleapis.com/token`. */
export function tokenEndpointOf(authorityHost: string): string {
  return `${authorityHost.replace(/\/+$/, '')}/token`;
}

/** A refusal of the token endpoint, with its OAuth error code (RFC 6749 §5.2). */
export class ServiceAccountRefused extends Error {
  constructor(
    readonly errorCode: string,
    readonly description: string,
    readonly httpStatus: number,
  ) {
    super(`${errorCode}: ${description}`);
  }
}

/** Posts the assertion; resolves with the token, rejects with {@link ServiceAccountRefused} or a network error. */
export async function requestServiceAccountToken(
  network: INetworkModule,
  tokenEndpoint: string,
  assertion: string,
): Promise<{ accessToken: string; expiresInSeconds: number }> {
  const answer = await network.sendPostRequestAsync<Record<string, unknown>>(tokenEndpoint, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString(),
  });
  const body = answer.body;
  if (answer.status === 200 && typeof body.access_token === 'string') {
    const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : ASSERTION_LIFETIME_SECONDS;
    return { accessToken: body.access_token, expiresInSeconds: expiresIn };
  }
  const code = typeof body.error === 'string' ? body.error : `http_${answer.status}`;
  const description = typeof body.error_description === 'string' ? body.error_description.slice(0, 300) : '';
  throw new ServiceAccountRefused(code, description, answer.status);
}

/**
 * What Google's refusal means, in words an administrator can act on (the error table of the
 * service-account document, "Error codes": `unauthorized_client` when domain-wide delegation is
 * not granted for the client or scope, `invalid_grant` for a bad signature, an unknown user or
 * a clock off, `admin_policy_enforced`, `access_denied`). `clientId` names the service account.
 */
export function describeServiceAccountError(
  err: ServiceAccountRefused,
  serviceAccount: string,
  mailbox: string,
): OAuthFailure {
  const fail = (message: string): OAuthFailure => ({ status: 'ERROR', code: err.errorCode, message });
  const said = err.description === '' ? '' : ` (Google: ${err.description})`;
  switch (err.errorCode) {
    case 'unauthorized_client':
      return fail(
        `domain-wide delegation is not granted: in the Google Admin console (Security → API controls → Domain-wide delegation) add the service account ${serviceAccount}'s client ID with the scope ${GMAIL_SCOPE}${said}`,
      );
    case 'invalid_grant':
      return fail(
        `Google refused the service account's assertion for ${mailbox}: the mailbox must be a user of the Workspace domain, the key must still exist (not deleted or disabled), and this machine's clock must be right${said}`,
      );
    case 'invalid_client':
      return fail(`Google does not know the service account ${serviceAccount} or its key${said}`);
    case 'admin_policy_enforced':
      return fail(`a Workspace administrator's policy blocks ${mailbox} from this service account${said}`);
    case 'access_denied':
      return fail(`Google denied access to ${mailbox}${said}`);
    default:
      return fail(`Google refused the service account's token request (${err.errorCode})${said}`);
  }
}
