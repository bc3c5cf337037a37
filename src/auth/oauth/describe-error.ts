import type { OAuthStatus } from '../../store/oauth-grants.js';

/** What an OAuth failure means for the grant, and what the administrator should do. */
export interface OAuthFailure {
  status: Extract<OAuthStatus, 'EXPIRED' | 'REAUTH_REQUIRED' | 'ERROR'>;
  /** The provider's (or msal-node's) error code, e.g. `invalid_grant`. */
  code: string;
  message: string;
}

interface ErrorFacts {
  errorCode?: unknown;
  errorMessage?: unknown;
  subError?: unknown;
  code?: unknown;
  message?: unknown;
}

/**
 * Classifies an msal-node or network error, in words an administrator can act on. Pure: the
 * provider's AADSTS number decides first, then the OAuth error code. Never repeats a token or a
 * secret (neither appears in these errors).
 */
export function describeOAuthError(err: unknown): OAuthFailure {
  const facts: ErrorFacts = typeof err === 'object' && err !== null ? (err as ErrorFacts) : {};
  const code =
    typeof facts.errorCode === 'string' && facts.errorCode !== ''
      ? facts.errorCode
      : typeof facts.code === 'string'
        ? facts.code
        : 'unknown';
  const text = `${typeof facts.errorMessage === 'string' ? facts.errorMessage : ''} ${
    typeof facts.message === 'string' ? facts.message : String(err)
  }`;
  const aadsts = /AADSTS(\d+)/.exec(text)?.[1];
  // msal-node reports a device-code poll's final error as post_request_failed, the provider's code in the text.
  const polled =
    code === 'post_request_failed'
      ? /\b(expired_token|authorization_declined|bad_verification_code|mailroom_cancelled|access_denied)\b/.exec(
          text,
        )?.[1]
      : undefined;
  if (polled !== undefined) return describeOAuthError({ errorCode: polled, errorMessage: text });
  const fail = (status: OAuthFailure['status'], message: string): OAuthFailure => ({ status, code, message });

  switch (aadsts) {
    case '7000215':
      return fail('ERROR', 'the client secret is wrong (AADSTS7000215): copy the secret Value, not its ID, again');
    case '7000222':
      return fail('ERROR', 'the client secret has expired (AADSTS7000222): create a new one in the app registration');
    case '700016':
      return fail(
        'ERROR',
        'the application (client) ID is not registered in this directory (AADSTS700016): check the client ID and the directory ID',
      );
    case '90002':
      return fail('ERROR', 'the directory (tenant) ID is not known to the identity provider (AADSTS90002)');
    case '65001':
      return fail(
        'ERROR',
        'the app lacks consent for the mail permissions (AADSTS65001): an administrator must grant admin consent',
      );
    case '50076':
    case '50079':
      return fail('REAUTH_REQUIRED', 'the directory now asks for multi-factor sign-in: sign in again with a new code');
    default:
      break;
  }
  switch (code) {
    case 'invalid_grant':
    case 'interaction_required':
    case 'consent_required':
    case 'login_required':
    case 'no_tokens_found':
      return fail(
        'REAUTH_REQUIRED',
        'the sign-in is no longer valid (revoked, password changed or unused for 90 days): request a new code and sign in again',
      );
    case 'expired_token':
      return fail('EXPIRED', 'the code was not entered in time: request a new code');
    case 'authorization_declined':
      return fail('ERROR', 'the person declined the sign-in at the identity provider');
    case 'bad_verification_code':
      return fail('ERROR', 'the identity provider does not know the device code: request a new code');
    case 'invalid_client':
      return fail('ERROR', 'the identity provider refused the app credentials: check the client secret and client ID');
    case 'unauthorized_client':
      return fail('ERROR', 'the app may not use this sign-in flow: check the app registration (public client flows)');
    case 'invalid_scope':
      return fail('ERROR', 'the identity provider refused the requested mail permissions (invalid_scope)');
    case 'invalid_tenant':
    case 'endpoints_resolution_error':
    case 'openid_config_error':
      return fail(
        'ERROR',
        'the identity provider could not be used for this directory: check the directory (tenant) ID and the authority host',
      );
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'ETIMEDOUT':
    case 'ECONNRESET':
      return fail(
        'ERROR',
        `the identity provider cannot be reached (${code}): check the authority host and the network`,
      );
    default:
      return fail('ERROR', `the identity provider refused the request (${code})`);
  }
}
