/**
 * OAuth 2.0 for IMAP and SMTP: device-code sign-in, client credentials, access tokens from the
 * sealed MSAL token cache. The only place msal-node is used.
 */
export { OAuthService, type OAuthOptions, type OAuthPurposeView, type OAuthStatusView } from './oauth-service.js';
export type { DeviceCodeStart, FlowSnapshot } from './device-code-flows.js';
export type { AccessToken, TokenOptions } from './token-provider.js';
export { describeOAuthError, type OAuthFailure } from './describe-error.js';
export type { OAuthPurpose, OAuthStatus } from '../../store/oauth-grants.js';
