import { createPublicKey, generateKeyPairSync, randomUUID, verify, type KeyObject } from 'node:crypto';
import type { Reply } from './directory.js';

/**
 * A fake of Google's OAuth 2.0 token endpoint for service accounts with domain-wide delegation,
 * after "Using OAuth 2.0 for Server to Server Applications"
 * (https://developers.google.com/identity/protocols/oauth2/service-account):
 *
 * - `POST /token`, a form with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and
 *   `assertion` ("Making the access token request");
 * - the JWT: header `alg` RS256, claims `iss` (the service account's e-mail), `scope`
 *   (space-delimited), `aud` (this endpoint's URL), `iat`, `exp` at most an hour after `iat`, and
 *   `sub` for delegation ("Forming the JWT claim set", "Additional claims"); signed with the
 *   service account's private key, checked here with its public key ("Computing the signature");
 * - the answer `{"access_token", "expires_in": 3599, "token_type": "Bearer"}` ("Handling the
 *   response"; no refresh token);
 * - refusals as its error table lists them: `unauthorized_client` when the client is not
 *   authorized for a requested scope (domain-wide delegation not granted: "Client is unauthorized
 *   to retrieve access tokens using this method, or client not authorized for any of the scopes
 *   requested."), `invalid_grant` for a bad signature ("Invalid JWT Signature."), a time window
 *   off ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable
 *   timeframe. Check your iat and exp values in the JWT claim.") or an unknown user ("Invalid
 *   email or User ID"). An unknown `iss` answers `invalid_grant` "Invalid JWT Signature." as well
 *   (no key to check it with).
 */

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** [3599] what Google answers as `expires_in`, s. */
const TOKEN_LIFETIME_SECONDS = 3599;
/** [300] clock difference tolerated on `iat`, s. */
const CLOCK_SKEW_SECONDS = 300;

export interface FakeServiceAccount {
  /** `client_email`: the JWT's `iss`. */
  clientEmail: string;
  /** The public half of the key the engine signs with (PEM or a KeyObject). */
  publicKey: string | KeyObject;
  /**
   * Scopes a Workspace administrator granted this account's client ID by domain-wide delegation
   * (Admin console → Security → API controls). [] : none (every request `unauthorized_client`).
   */
  delegatedScopes: string[];
  /** Users of the domain (`sub` values); unset: any. */
  users?: string[];
}

/** A service account's key file as Google Cloud gives it for download, and the public key to register. */
export function makeServiceAccountKeyFile(clientEmail: string): { keyFile: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = JSON.stringify({
    type: 'service_account',
    project_id: 'mailroom-test',
    private_key_id: randomUUID().replaceAll('-', ''),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: clientEmail,
    client_id: '1'.padEnd(21, '0'),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: 'https://oauth2.googleapis.com/token',
  });
  return { keyFile, publicKey };
}

function refusal(status: number, error: string, description: string): Reply {
  return { status, body: { error, error_description: description } };
}

interface Decoded {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  signed: string;
  signature: Buffer;
}

function decode(assertion: string): Decoded | null {
  const parts = assertion.split('.');
  if (parts.length !== 3) return null;
  try {
    const [header, claims, signature] = parts as [string, string, string];
    return {
      header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>,
      claims: JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as Record<string, unknown>,
      signed: `${header}.${claims}`,
      signature: Buffer.from(signature, 'base64url'),
    };
  } catch {
    return null;
  }
}

/** The rules of the endpoint, without HTTP; the caller issues the token (the fake IdP's, so IMAP and SMTP accept it). */
export class GoogleServiceAccounts {
  readonly accounts = new Map<string, FakeServiceAccount>();

  constructor(
    private readonly settings: {
      /** This endpoint's URL: the `aud` a JWT must name. */
      tokenUrl: () => string;
      now: () => number;
      /** Issues an access token opening `user`'s mailbox. */
      issue: (user: string, clientId: string) => string;
    },
  ) {}

  add(account: FakeServiceAccount): void {
    this.accounts.set(account.clientEmail.toLowerCase(), account);
  }

  token(form: URLSearchParams): Reply {
    if (form.get('grant_type') !== JWT_BEARER_GRANT) {
      return refusal(400, 'unsupported_grant_type', 'Invalid grant_type: ' + (form.get('grant_type') ?? ''));
    }
    const jwt = decode(form.get('assertion') ?? '');
    if (!jwt) return refusal(400, 'invalid_request', 'Invalid JWT: not a JWT');
    const { header, claims } = jwt;
    const account = typeof claims.iss === 'string' ? this.accounts.get(claims.iss.toLowerCase()) : undefined;
    if (header.alg !== 'RS256' || !account) return refusal(400, 'invalid_grant', 'Invalid JWT Signature.');
    const publicKey = typeof account.publicKey === 'string' ? createPublicKey(account.publicKey) : account.publicKey;
    if (!verify('RSA-SHA256', Buffer.from(jwt.signed), publicKey, jwt.signature)) {
      return refusal(400, 'invalid_grant', 'Invalid JWT Signature.');
    }
    if (claims.aud !== this.settings.tokenUrl()) {
      return refusal(400, 'invalid_grant', `Invalid JWT: audience must be ${this.settings.tokenUrl()}`);
    }
    const now = Math.floor(this.settings.now() / 1000);
    const { iat, exp } = claims;
    if (
      typeof iat !== 'number' ||
      typeof exp !== 'number' ||
      exp - iat > 3600 ||
      exp <= now ||
      iat > now + CLOCK_SKEW_SECONDS
    ) {
      return refusal(
        400,
        'invalid_grant',
        'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
      );
    }
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ').filter((s) => s !== '') : [];
    if (scopes.length === 0 || !scopes.every((s) => account.delegatedScopes.includes(s))) {
      return refusal(
        401,
        'unauthorized_client',
        'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
      );
    }
    const subject = typeof claims.sub === 'string' ? claims.sub : account.clientEmail;
    if (account.users && !account.users.some((u) => u.toLowerCase() === subject.toLowerCase())) {
      return refusal(400, 'invalid_grant', 'Invalid email or User ID');
    }
    return {
      status: 200,
      body: {
        access_token: this.settings.issue(subject, account.clientEmail),
        expires_in: TOKEN_LIFETIME_SECONDS,
        token_type: 'Bearer',
      },
    };
  }
}
