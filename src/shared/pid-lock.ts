import { readFile, rm, writeFile } from 'node:fs/promises';

/**
 * A lock file holding the process id of its holder, as PostgreSQL's `postmaster.pid` and Haraka's
 * spool do: created exclusively; one left behind by a process that is gone (a crash, a kill -9)
 * is taken over, one whose process still runs is refused. Used for what a second process must
 * never open beside the first: the outbound spool and the embedded database.
 *
 * A process that died leaves its id, and the system may give that id to an unrelated process
 * later (after a reboot, say): then the lock is refused with the file named, for a person to
 * delete once sure that nothing runs there.
 */

/** Whether a process with this id runs (EPERM: it runs under another user). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process id a lock file names, or undefined when it names none (empty, half written). */
async function holderOf(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Takes the lock `file` for this process. Another live process holding it: `refuse(pid)` is
 * thrown. This process holding it already (opened again after a close it missed) counts as free.
 * `mode` is the file's permission bits.
 */
export async function takePidLock(
  file: string,
  refuse: (holder: number) => Error,
  options: { mode?: number } = {},
): Promise<void> {
  const mode = options.mode ?? 0o600;
  const line = `${process.pid}\n`;
  for (let attempt = 0; ; attempt += 1) {
    try {
      await writeFile(file, line, { flag: 'wx', mode });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await holderOf(file);
    if (holder !== undefined && holder !== process.pid && processIsAlive(holder)) throw refuse(holder);
    // Stale (its process is gone) or ours: remove it and create it anew, exclusively, so that of two
    // processes taking over the same stale lock one creates it and the other finds it held.
    if (attempt === 2) throw refuse(holder ?? 0);
    await rm(file, { force: true });
  }
}

/** Removes the lock file if this process holds it (one taken over by another process is left alone). */
export async function releasePidLock(file: string): Promise<void> {
  if ((await holderOf(file)) === process.pid) await rm(file, { force: true });
}
