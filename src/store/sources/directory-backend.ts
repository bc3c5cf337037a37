import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { refOfName, sourceName, type BlobBackend, type ListedSource, type SourceRef } from './source-backend.js';

/** [0o600] a source file: the engine's user alone reads it (mail is personal data). */
const FILE_MODE = 0o600;
/** [0o700] the folders, likewise. */
const DIR_MODE = 0o700;

/**
 * Sources as files, `MAILROOM_BLOB_DIR/<tenantId>/<messageId>.eml`, written the Maildir way (as
 * the outbound spool and Haraka's qfile): a temporary file created exclusively in `tmp/`, written,
 * fsynced, renamed into place, and the folder fsynced, so a source is either whole or absent
 * after a crash. A leftover in `tmp/` is an interrupted write: the sweeper removes it.
 */
export class DirectoryBackend implements BlobBackend {
  readonly kind = 'directory' as const;

  constructor(
    private readonly dir: string,
    /** [true] fsync files and folders (off only for throwaway test folders). */
    private readonly fsync = true,
  ) {}

  private fileOf(ref: SourceRef): string {
    return join(this.dir, `${sourceName(ref)}.eml`);
  }

  async put(ref: SourceRef, data: Buffer): Promise<void> {
    const tmpDir = join(this.dir, 'tmp');
    const folder = join(this.dir, ref.tenantId.toLowerCase());
    await mkdir(tmpDir, { recursive: true, mode: DIR_MODE });
    await mkdir(folder, { recursive: true, mode: DIR_MODE });
    const tmp = join(tmpDir, `${ref.messageId}.${randomUUID()}`);
    const handle = await open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, FILE_MODE);
    try {
      await handle.writeFile(data);
      if (this.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.fileOf(ref));
    if (this.fsync) await syncFolder(folder);
  }

  async get(ref: SourceRef): Promise<Buffer | null> {
    try {
      return await readFile(this.fileOf(ref));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async delete(refs: readonly SourceRef[]): Promise<void> {
    const folders = new Set<string>();
    for (const ref of refs) {
      await rm(this.fileOf(ref), { force: true });
      folders.add(join(this.dir, ref.tenantId.toLowerCase()));
    }
    if (this.fsync) for (const folder of folders) await syncFolder(folder).catch(ignoreMissing);
  }

  /**
   * Name order: tenant folders, then files, sorted (a folder of a tenant is read whole, which is
   * what a sweep of it costs anyway). The cursor is the last name listed.
   */
  async list(after: string | null, limit: number): Promise<{ items: ListedSource[]; next: string | null }> {
    const items: ListedSource[] = [];
    const tenants = (await readdirOrEmpty(this.dir)).filter((n) => n !== 'tmp').sort();
    for (const tenant of tenants) {
      if (after !== null && tenant < (after.split('/')[0] ?? '')) continue;
      const names = (await readdirOrEmpty(join(this.dir, tenant)))
        .filter((n) => n.endsWith('.eml'))
        .map((n) => `${tenant}/${n.slice(0, -'.eml'.length)}`)
        .filter((n) => after === null || n > after)
        .sort();
      for (const name of names) {
        const ref = refOfName(name);
        if (!ref) continue;
        const info = await stat(join(this.dir, `${name}.eml`)).catch(() => null);
        if (!info) continue;
        items.push({ ...ref, modifiedAt: info.mtime, bytes: info.size });
        if (items.length >= limit) return { items, next: name };
      }
    }
    return { items, next: null };
  }

  /** Interrupted writes older than `before` (a crash between create and rename): removed. */
  async removeStaleTemporaries(before: Date): Promise<number> {
    const tmpDir = join(this.dir, 'tmp');
    let removed = 0;
    for (const name of await readdirOrEmpty(tmpDir)) {
      const info = await stat(join(tmpDir, name)).catch(() => null);
      if (info && info.mtime < before) {
        await rm(join(tmpDir, name), { force: true });
        removed += 1;
      }
    }
    return removed;
  }

  async close(): Promise<void> {}
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
