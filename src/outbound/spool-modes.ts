import { chmod, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The spool holds customers' mail: only the engine's own user may read it. Files are created
 * 0600 and folders 0700 (the umask can only take bits away, never add the group's or others').
 */
export const SPOOL_FILE_MODE = 0o600;
export const SPOOL_DIR_MODE = 0o700;

/** Permission bits for the group and others. */
const SHARED_BITS = 0o077;

/**
 * Takes the group's and others' access away from every folder and file of the spool (walked
 * depth first; links are left alone, never followed), as earlier versions created them 0755 and
 * 0644. One `lstat` per entry, once at start; resolves with how many entries were changed.
 */
export async function tightenSpoolModes(dir: string): Promise<number> {
  let changed = 0;
  const visit = async (path: string): Promise<void> => {
    let stats;
    try {
      stats = await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // gone meanwhile
      throw err;
    }
    if (stats.isSymbolicLink()) return;
    const wanted = stats.isDirectory() ? SPOOL_DIR_MODE : SPOOL_FILE_MODE;
    if ((stats.mode & SHARED_BITS) !== 0) {
      await chmod(path, (stats.mode & 0o700) | (wanted & 0o700));
      changed += 1;
    }
    if (stats.isDirectory()) {
      for (const name of await readdir(path)) await visit(join(path, name));
    }
  };
  await visit(dir);
  return changed;
}
