import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway certificate authority and a server certificate it signed for 127.0.0.1 / localhost. */
export interface TestCertificates {
  /** PEM certificate of the CA: what a client must trust. */
  ca: string;
  /** PEM private key of the server certificate. */
  key: string;
  /** PEM server certificate (SAN IP:127.0.0.1, DNS:localhost). */
  cert: string;
}

/**
 * Makes a fresh CA and server certificate (for `subjectAltName`) with the `openssl` command (node:crypto cannot write
 * X.509 certificates). Valid for `days` days [2]; the files live in a temporary folder only while made.
 */
export function makeTestCertificates(subjectAltName = 'IP:127.0.0.1, DNS:localhost', days = 2): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-idp-certs-'));
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  try {
    const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl(
      ...['req', '-x509', ...ecKey, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', String(days)],
      ...['-subj', '/CN=Mailroom fake identity provider CA'],
      ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    );
    writeFileSync(
      file('server.ext'),
      [
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature',
        'extendedKeyUsage = serverAuth',
        `subjectAltName = ${subjectAltName}`,
        '',
      ].join('\n'),
    );
    openssl('req', ...ecKey, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1');
    openssl(
      'x509',
      '-req',
      '-in',
      file('server.csr'),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      String(days),
      '-extfile',
      file('server.ext'),
      '-out',
      file('server.pem'),
    );
    return {
      ca: readFileSync(file('ca.pem'), 'utf8'),
      key: readFileSync(file('server.key'), 'utf8'),
      cert: readFileSync(file('server.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
