/**
 * Whether the console may turn an identity provider's `verificationUri` (from a device-code
 * sign-in) into a link. The address comes from whatever answers at the server's authority host,
 * which a tenant chooses: only https pages on that very host, or Microsoft's own device-login
 * pages, are linked; anything else is shown as text for a person to judge.
 */

/**
 * Hosts of Microsoft's device-login pages (https, default port): `https://microsoft.com/devicelogin`
 * (the `verification_uri` of Microsoft Entra's device-code responses, as in Microsoft's device-code
 * flow documentation, learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code),
 * `https://www.microsoft.com/link` (what the v2.0 endpoint answers since 2022) and the
 * login hosts themselves (`https://login.microsoftonline.com/common/oauth2/deviceauth`).
 */
export const MICROSOFT_DEVICE_LOGIN_HOSTS = Object.freeze([
  'microsoft.com',
  'www.microsoft.com',
  'login.microsoftonline.com',
  'login.microsoft.com',
]);

/**
 * The address to link, or null to show `verificationUri` as text only.
 * @param {string} verificationUri what the identity provider answered
 * @param {string | null | undefined} authorityHost the side's authority host (`https://host[:port]`)
 */
export function signInLink(verificationUri, authorityHost) {
  let uri;
  try {
    uri = new URL(verificationUri);
  } catch {
    return null;
  }
  if (uri.protocol !== 'https:' || uri.username !== '' || uri.password !== '') return null;
  let authority = null;
  try {
    authority = authorityHost ? new URL(authorityHost) : null;
  } catch {
    authority = null;
  }
  const onAuthority = authority !== null && authority.protocol === 'https:' && authority.host === uri.host;
  const microsoft = uri.port === '' && MICROSOFT_DEVICE_LOGIN_HOSTS.includes(uri.hostname);
  return onAuthority || microsoft ? uri.href : null;
}
