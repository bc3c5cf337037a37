import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTestCertificates, type TestCertificates } from './certificates.js';

/** Validity of certificates the harness makes for people, days. */
const VALID_DAYS = 30;
/** A kept certificate with less than this left is made anew, ms (one day). */
const RENEW_BEFORE_MS = 86_400_000;

/** The fake identity provider's certificates as files a person (and the engine) can point at. */
export interface CertificateFiles extends TestCertificates {
  /** `<dir>/idp-ca.pem`: the CA to trust (MAILROOM_OAUTH_CA_FILE). */
  caFile: string;
  /** True when they were made now, false when the ones in the folder were kept. */
  made: boolean;
}

/**
 * The certificates of the harness's identity provider, kept in `dir` (`idp-ca.pem`,
 * `idp-server.pem`, `idp-server.key`) so that the CA the engine was told to trust stays the same
 * across harness restarts. Kept ones are used while they are valid for another day and the
 * server certificate is the CA's; otherwise new ones (valid 30 days) replace them. The folder is
 * 0700 and the key 0600: only the CA is for others to read, and it is only trusted where
 * MAILROOM_OAUTH_CA_FILE names it.
 */
export function loadOrMakeCertificates(dir: string, now: () => number = Date.now): CertificateFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, 'idp-ca.pem');
  const certFile = join(dir, 'idp-server.pem');
  const keyFile = join(dir, 'idp-server.key');
  const kept = readKept(caFile, certFile, keyFile, now());
  if (kept) return { ...kept, caFile, made: false };
  const made = makeTestCertificates('IP:127.0.0.1, DNS:localhost', VALID_DAYS);
  writeAtomically(keyFile, made.key, 0o600);
  writeAtomically(certFile, made.cert, 0o644);
  writeAtomically(caFile, made.ca, 0o644);
  return { ...made, caFile, made: true };
}

function readKept(caFile: string, certFile: string, keyFile: string, nowMs: number): TestCertificates | undefined {
  try {
    const ca = readFileSync(caFile, 'utf8');
    const cert = readFileSync(certFile, 'utf8');
    const key = readFileSync(keyFile, 'utf8');
    const caCert = new X509Certificate(ca);
    const serverCert = new X509Certificate(cert);
    const lastsLongEnough = (c: X509Certificate): boolean => Date.parse(c.validTo) - nowMs > RENEW_BEFORE_MS;
    if (
      !serverCert.verify(caCert.publicKey) ||
      !serverCert.checkPrivateKey(createPrivateKey(key)) ||
      !lastsLongEnough(caCert) ||
      !lastsLongEnough(serverCert)
    ) {
      return undefined;
    }
    return { ca, cert, key };
  } catch {
    return undefined; // missing or unreadable: made anew
  }
}

function writeAtomically(file: string, text: string, mode: number): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode });
  chmodSync(temp, mode);
  renameSync(temp, file);
}
