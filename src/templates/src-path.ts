import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, sep } from 'node:path';

/**
 * Where a `Src` attribute points, decided without touching the disk: a file inside the templates
 * directory (relative to the response file), a remote http/https URL, or refused with a reason.
 */
export type SrcTarget =
  { kind: 'local'; path: string } | { kind: 'remote'; url: URL } | { kind: 'refused'; reason: string };

/** Thrown when a Src cannot be read; the message is shown to administrators as is. */
export class SrcError extends Error {}

/**
 * @param src the attribute as written
 * @param baseDir directory of the referring file, relative to the templates directory, `/`-separated
 */
export function classifySrc(src: string, baseDir: string): SrcTarget {
  const value = src.trim();
  if (value.includes('\0')) return { kind: 'refused', reason: 'Src contains a NUL character' };
  if (/^[a-z]:[\\/]/i.test(value) || /^[\\/]/.test(value)) {
    if (value.startsWith('//')) return remote(`https:${value}`);
    return { kind: 'refused', reason: `absolute paths are refused (Src '${src}'); use a path relative to the file` };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') return remote(value);
  if (scheme !== undefined) {
    return {
      kind: 'refused',
      reason: `${scheme}: URIs are refused (Src '${src}'); only relative paths and http/https`,
    };
  }
  // A host name without a scheme ("www.example.com/logo.jpg", as in the reference) is a web address.
  if (/^www\.[^/\\]+\.[a-z]{2,}([/\\]|$)/i.test(value)) return remote(`https://${value}`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(value.replace(/[?#].*$/, ''));
  } catch {
    return { kind: 'refused', reason: `Src '${src}' has an invalid %-escape` };
  }
  const segments = decoded.replace(/\\/g, '/').split('/');
  if (segments.includes('..')) {
    return {
      kind: 'refused',
      reason: `'..' is refused in Src '${src}': files must stay inside the templates directory`,
    };
  }
  const path = posix.normalize(posix.join(baseDir, segments.filter((s) => s !== '' && s !== '.').join('/')));
  if (path === '.' || path.startsWith('../') || path.startsWith('/') || decoded.includes('\0')) {
    return { kind: 'refused', reason: `Src '${src}' does not name a file inside the templates directory` };
  }
  return { kind: 'local', path };
}

function remote(text: string): SrcTarget {
  try {
    return { kind: 'remote', url: new URL(text) };
  } catch {
    return { kind: 'refused', reason: `'${text}' is not a valid URL` };
  }
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/**
 * Reads a file of the templates directory. Symbolic links are followed only when their target is
 * inside the directory too (checked on the real path); nothing outside is opened.
 * @param realRoot the templates directory, already through `realpath`
 * @param relPath `/`-separated path relative to it
 * @param maxBytes largest file accepted
 */
export async function readConfined(realRoot: string, relPath: string, maxBytes: number): Promise<Buffer> {
  const candidate = join(realRoot, ...relPath.split('/'));
  if (!inside(realRoot, candidate)) throw new SrcError(`'${relPath}' is outside the templates directory`);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw new SrcError(`'${relPath}' does not exist`);
  }
  if (!inside(realRoot, real)) {
    throw new SrcError(`'${relPath}' is a link to a file outside the templates directory; refused`);
  }
  const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new SrcError(`'${relPath}' is not a regular file`);
    if (info.size > maxBytes) throw new SrcError(`'${relPath}' is larger than ${maxBytes} bytes`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
