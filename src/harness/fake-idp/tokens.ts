import { createHash, randomBytes } from 'node:crypto';

/** Tokens and token parts the fake identity provider hands out. Nothing here is signed. */

export function opaqueToken(prefix: string): string {
  return `${prefix}.${randomBytes(24).toString('base64url')}`;
}

/** A stable object id for a user name, shaped like an Entra object id (a GUID). */
export function objectIdOf(user: string): string {
  const hex = createHash('sha256').update(user.toLowerCase()).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** `client_info` as Entra sends it: base64url of `{"uid","utid"}`. */
export function clientInfoOf(uid: string, utid: string): string {
  return Buffer.from(JSON.stringify({ uid, utid })).toString('base64url');
}

/** An unsigned JWT (`alg: none`); msal-node reads the claims of an id token without checking a signature. */
export function unsignedJwt(claims: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

export interface IdTokenFacts {
  issuer: string;
  clientId: string;
  directoryId: string;
  user: string;
  nowSeconds: number;
}

export function idTokenOf(facts: IdTokenFacts): string {
  const oid = objectIdOf(facts.user);
  return unsignedJwt({
    ver: '2.0',
    iss: facts.issuer,
    aud: facts.clientId,
    tid: facts.directoryId,
    oid,
    sub: oid,
    preferred_username: facts.user,
    name: facts.user,
    iat: facts.nowSeconds,
    nbf: facts.nowSeconds,
    exp: facts.nowSeconds + 3600,
  });
}
