import { X509Certificate } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative } from 'node:path';

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
    bytes = await readSmallFile(path);
  } catch (err) {
    if (err instanceof CaFileRefused) throw new Error(`the CA file ${path} ${err.message}`);
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable' : 'cannot be read';
    throw new Error(`the CA file ${path} ${why}${code ? ` (${code})` : ''}`);
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

/**
 * Reads a CA file as {@link readCaFile} does, provided it lies inside `dir` (MAILROOM_CA_DIR) once
 * links are followed: paths a tenant gives must not let it learn what exists elsewhere on the
 * engine's machine. Messages say what is wrong, for the operator's log; a tenant is answered one
 * sentence whatever it was (ServerService).
 */
export async function readCaFileIn(dir: string | undefined, path: string): Promise<string> {
  if (dir === undefined) throw new Error('no CA directory is configured (MAILROOM_CA_DIR)');
  if (!isAbsolute(path)) throw new Error(`the CA file path '${path}' is not absolute`);
  const root = await realpath(dir).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`the CA directory ${dir} (MAILROOM_CA_DIR) cannot be read (${err.code ?? err.message})`);
  });
  const real = await realpath(path).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`the CA file ${path} cannot be found (${err.code ?? err.message})`);
  });
  const inside = relative(root, real);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
    throw new Error(`the CA file ${path} is not inside the CA directory ${root} (MAILROOM_CA_DIR)`);
  }
  return readCaFile(real);
}

/** Why a path is not a file that can be read as a CA bundle (its message completes "the CA file <path> …"). */
class CaFileRefused extends Error {}

/**
 * Reads a regular file of at most MAX_CA_FILE_BYTES. Anything else is refused before it is read:
 * a FIFO or a device would block the caller (inside the tenant's transaction) or grow memory
 * without bound (`/dev/zero`). The path is checked, then opened without blocking and checked again
 * through the handle (the path may have been replaced in between), and at most one byte more
 * than the limit is read (the file may grow after the check).
 */
async function readSmallFile(path: string): Promise<Buffer> {
  checkKind(await stat(path));
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const { size } = checkKind(await handle.stat());
    // As large as the file (one byte more shows it grew past the limit), not the limit each time.
    const buffer = Buffer.allocUnsafe(Math.min(size, MAX_CA_FILE_BYTES) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_CA_FILE_BYTES) throw tooLarge();
    if (length === buffer.length) throw new CaFileRefused('grew while it was read; try again once it is written');
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

function checkKind<S extends { isFile(): boolean; isDirectory(): boolean; size: number }>(stats: S): S {
  if (!stats.isFile()) {
    throw new CaFileRefused(
      stats.isDirectory() ? 'is a directory, not a file' : 'is not a regular file (a FIFO, socket or device)',
    );
  }
  if (stats.size > MAX_CA_FILE_BYTES) throw tooLarge();
  return stats;
}

function tooLarge(): CaFileRefused {
  return new CaFileRefused(`is larger than ${MAX_CA_FILE_BYTES} bytes; is it a CA bundle?`);
}
