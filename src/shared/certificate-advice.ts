/**
 * What to do about a server certificate that TLS verification refused, in words an administrator
 * can act on ("Test connection" and the status). Verification itself always stays on: the advice
 * is to name the CA that issued the certificate, never to turn checking off.
 */

/** Node's (OpenSSL's) codes of a certificate whose issuer is not trusted. */
const UNTRUSTED_ISSUER_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

interface CodedError {
  code?: unknown;
  /** nodemailer keeps the system's code here when it sets its own (ETLS, ESOCKET). */
  originalCode?: unknown;
  cause?: unknown;
  message?: unknown;
}

/** The OpenSSL code of an untrusted-issuer failure in `err` (or its cause), or undefined. */
export function untrustedIssuerCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 3; depth += 1) {
    const { code, originalCode, cause } = e as CodedError;
    for (const c of [code, originalCode]) if (typeof c === 'string' && UNTRUSTED_ISSUER_CODES.has(c)) return c;
    e = cause;
  }
  return undefined;
}

/**
 * Advice for a certificate the server presented and verification refused as of an unknown issuer,
 * naming the server's CA field (`imap.caFile` or `smtp.caFile`); undefined for any other failure.
 * @param caFile the CA file the side uses now (null: none)
 */
export function certificateAdvice(err: unknown, field: string, caFile: string | null): string | undefined {
  const code = untrustedIssuerCode(err);
  if (code === undefined) return undefined;
  const why = String((err as CodedError).message ?? code).slice(0, 200);
  return caFile === null
    ? `the server's certificate is not trusted (${why}): name the CA that issued it in '${field}' ` +
        `(a PEM file in the engine's CA directory, MAILROOM_CA_DIR); verification stays on`
    : `the server's certificate is not trusted by '${field}' (${caFile}) nor the usual roots (${why}): ` +
        `is it the CA that issued the server's certificate?`;
}
