import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';

/** [1048576] largest CA file read, bytes: a bundle of a few hundred certificates fits. */
const MAX_CA_FILE_BYTES = 1024 * 1024;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END CERTIFICATE-----/g;

/**
 * Reads a PEM file of CA certificates (an e-mail server's `imap.caFile`) and checks that it holds
 * at least one certificate and that each one parses. Resolves with the PEM text; rejects with an
 * Error whose message says, in words an administrator can act on, what is wrong with the file.
 */
export async function readCaFile(path: string): Promise<string> {
  if (!isAbsolute(path)) throw new Error(`the CA file path '${path}' is not absolute`);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable' : 'cannot be read';
    throw new Error(`the CA file ${path} ${why}${code ? ` (${code})` : ''}`);
  }
  if (bytes.length > MAX_CA_FILE_BYTES) {
    throw new Error(`the CA file ${path} is larger than ${MAX_CA_FILE_BYTES} bytes; is it a CA bundle?`);
  }
  const pem = bytes.toString('utf8');
  const certificates = pem.match(PEM_CERTIFICATE) ?? [];
  if (certificates.length === 0) {
    throw new Error(`the CA file ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  for (const [i, certificate] of certificates.entries()) {
    try {
      new X509Certificate(certificate);
    } catch (err) {
      throw new Error(`certificate ${i + 1} of the CA file ${path} does not parse: ${(err as Error).message}`);
    }
  }
  return certificates.join('\n');
}
