import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fsync,
  open as openFd,
  openSync,
  renameSync,
  statSync,
  writeFile as writeToFd,
} from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SentLog } from './sent-log.js';
import { SPOOL_DIR_MODE, SPOOL_FILE_MODE, tightenSpoolModes } from './spool-modes.js';
import { isMailroomError, MailroomError } from '../shared/errors.js';
import { releasePidLock, takePidLock } from '../shared/pid-lock.js';

/**
 * The outbound disk spool, Maildir style (after Haraka's qfile): a message is written to `tmp/`
 * with an exclusive create, fsynced, renamed into its account's queue and the folder fsynced.
 * Only then is it accepted. Files carry a header line with a checksum; one that fails it goes to
 * `corrupt/` and is never sent. A LOCK file keeps a second process away from the same spool.
 *
 * Files are recycled, as PostgreSQL recycles its WAL segments: a delivered message's file is
 * renamed into `free/` instead of deleted, and the next accepted message is written into it
 * instead of a new file. Creating a file costs the kernel far more than renaming one (about
 * 0.9 ms of CPU on the CI machine, against 20 µs), and every message paid it. A recycled file is
 * overwritten from its start and keeps its length, again as WAL segments are: emptying it first
 * freed its blocks (40 µs to 0.5 ms), and a write that changes a file's size makes the kernel
 * commit its metadata as well. Past the new message the same write fills the file with zeros to
 * its old end (at most RECYCLE_MAX_BYTES): an earlier message's tail would otherwise stay on disk
 * for as long as the file is reused, where no erasure reaches it. The header's `size` says where
 * the message ends, and the checksum covers exactly those bytes.
 *
 * The quick metadata calls of a message's way through the spool (the open of a recycled file,
 * the close of its file, the renames into the queue and into `free/`, the mark in the sent log)
 * are made synchronously; the creation of a new file, the writes and the fsyncs, which wait for the disk,
 * go to libuv's thread pool. Handing a call to the pool and back cost the event loop 10-90 µs on
 * the CI machine, more than the call itself (an open of an existing file 3 µs; a rename p50
 * 14 µs, p99 112 µs, p99.9 0.3 ms, measured over 32,000 renames under the outbound benchmark),
 * and the benchmark delivered 13 % more messages a second with the renames made synchronously.
 * A delivery is marked by a line in the sent log rather than by moving its file (see SentLog).
 *
 *   <dir>/LOCK
 *   <dir>/tmp/<id>
 *   <dir>/sent/delivered.log                   deliveries (250) whose files are still queued (not yet recorded)
 *   <dir>/sent/<accountId>/<seq>-<id>.msg       the same, as left by earlier versions (recorded at start)
 *   <dir>/free/<n>                               delivered files waiting to be reused
 *   <dir>/queue/<accountId>/<seq>-<id>.msg     FIFO by name
 *   <dir>/dead/<accountId>/<seq>-<id>.msg      + .json with the reason
 *   <dir>/corrupt/<file>
 */

export interface SpoolHeader {
  v: 1;
  id: string;
  tenantId: string;
  accountId: string;
  destinationId: string;
  instanceId: string;
  envelope: { from: string; to: string[] };
  messageId: string;
  createdAt: string;
  size: number;
  sha256: string;
}

export interface SpoolItem {
  accountId: string;
  id: string;
  file: string;
  /** Order within the account's queue. */
  name: string;
  /**
   * Length of the file, when known: its header line and message, or more when a recycled file
   * was longer (it keeps its length).
   */
  bytes?: number;
}

/** A message written to disk by `Spool.write`, not yet in its queue. */
export interface SpoolDraft {
  header: SpoolHeader;
  /** Where the file is until it is queued. */
  tmp: string;
  /** Length of the file: the bytes written (header line and message), or a recycled file's longer length. */
  bytes: number;
}

export interface DeadLetterInfo {
  reply: string;
  responseCode: number | null;
  attempts: number;
  firstAttemptAt: string | null;
  failedAt: string;
}

export interface SpoolOptions {
  /** [true] fsync files and folders (turn off only for throwaway test spools). */
  fsync?: boolean;
  /** [Date.now] the clock the queue file names (and so the queued times) come from, ms. */
  now?: () => number;
  /**
   * [64 MiB] disk space the delivered files kept in `free/` for reuse may take (each counted in
   * whole 4 KiB blocks; beyond that they are deleted), as PostgreSQL's `min_wal_size` keeps WAL
   * segments: about 16,000 files of ordinary messages, so that a burst of that many reuses files
   * instead of creating and deleting them.
   */
  maxFreeBytes?: number;
}

/** Flags of a new spool file with fsync on: created exclusively, written synchronously to disk (data and size). */
const CREATE_DSYNC = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC;
/** Flags of a recycled file: overwritten from its start, keeping its length (see the class comment). */
const REUSE = constants.O_WRONLY;
/**
 * Largest file recycled. A recycled file keeps its length, so a large message's file would hold its
 * disk space for good; and for a large message the creation of a file is a small part of its cost.
 */
const RECYCLE_MAX_BYTES = 64 * 1024;
/** The disk space a file of `bytes` takes, as counted against `maxFreeBytes`: whole blocks. */
const BLOCK = 4096;
function diskBytes(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / BLOCK)) * BLOCK;
}

/** The message id in a queue file's name (`<seq>-<id>.msg`). */
function idOf(name: string): string {
  return name.slice(name.indexOf('-') + 1, -'.msg'.length);
}

/** Writes all of `data` to an open file descriptor (from its current position), in the thread pool. */
const writeAll = promisify(writeToFd) as (fd: number, data: Buffer) => Promise<void>;
const fsyncFd = promisify(fsync);
const openAsync = promisify(openFd) as (path: string, flags: number | string, mode: number) => Promise<number>;

function spoolError(err: unknown, what: string): MailroomError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new MailroomError('SPOOL_FULL', `the spool disk is full; nothing was accepted (${what})`, { cause: err });
  }
  return new MailroomError('SPOOL_UNAVAILABLE', `the spool cannot be written (${what}: ${code ?? String(err)})`, {
    cause: err,
  });
}

/** When a queued file was spooled, from its name (microseconds since the epoch), ms; null if unreadable. */
export function queuedAtOf(item: Pick<SpoolItem, 'name'>): number | null {
  const micros = Number(item.name.slice(0, item.name.indexOf('-')));
  return Number.isFinite(micros) && micros > 0 ? Math.floor(micros / 1000) : null;
}

/** When a queued file was spooled, from its name, as ISO 8601. */
export function seqTimeOf(item: Pick<SpoolItem, 'name'>): string | null {
  const ms = queuedAtOf(item);
  return ms === null ? null : new Date(ms).toISOString();
}

export class Spool {
  private lastMs = 0;
  private locked = false;
  private readonly dirSyncs = new Map<string, { running: Promise<void> | null; next: Promise<void> | null }>();
  private readonly fsync: boolean;
  private readonly now: () => number;
  /** Queue folders known to exist (created once, not on every message), by account. */
  private readonly queueDirs = new Map<string, string>();
  /** Deliveries marked in the sent log whose files are still in their queue folders. */
  private readonly sentLog: SentLog;
  /**
   * The marked deliveries whose files are still queued (`<accountId>/<name>` to the time of the
   * 250), read from the log once: listings of the queue leave them out.
   */
  private delivered: Map<string, number> | null = null;
  private readonly freeDir: string;
  private readonly tmpDir: string;
  /** Files in `free/`, ready to take a new message, with their lengths. */
  private readonly free: Array<{ path: string; bytes: number }> = [];
  /** Disk space of the files in {@link free}, as counted against maxFreeBytes. */
  private freeBytes = 0;
  private readonly maxFreeBytes: number;
  private freeSeq = 0;

  constructor(
    readonly dir: string,
    options: SpoolOptions = {},
  ) {
    this.fsync = options.fsync ?? true;
    this.now = options.now ?? Date.now;
    this.maxFreeBytes = Math.max(0, options.maxFreeBytes ?? 64 * 1024 * 1024);
    this.freeDir = join(dir, 'free');
    this.tmpDir = join(dir, 'tmp');
    this.sentLog = new SentLog(join(dir, 'sent', 'delivered.log'));
  }

  /**
   * Creates the folders and takes the lock (refused while another live process holds it), then
   * makes what earlier versions left readable by others (0644 files, 0755 folders) the engine's
   * alone. Resolves with how many files and folders were changed.
   */
  async open(): Promise<{ modesTightened: number }> {
    for (const sub of ['tmp', 'queue', 'dead', 'corrupt', 'free', 'sent'])
      await mkdir(join(this.dir, sub), { recursive: true, mode: SPOOL_DIR_MODE });
    await takePidLock(
      join(this.dir, 'LOCK'),
      (holder) => new MailroomError('SPOOL_LOCKED', `the spool ${this.dir} is in use by process ${holder}`),
      { mode: SPOOL_FILE_MODE },
    ).catch((err: unknown) => {
      throw isMailroomError(err) ? err : spoolError(err, 'lock');
    });
    this.locked = true;
    const modesTightened = await tightenSpoolModes(this.dir);
    await rm(join(this.dir, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.dir, 'tmp'), { recursive: true, mode: SPOOL_DIR_MODE });
    // What is in free/ is reused whatever it holds (a write cut short by a crash included), but
    // for files over RECYCLE_MAX_BYTES (left by a version that emptied files before reuse) and
    // those past maxFreeBytes, which are deleted.
    const names = await readdir(this.freeDir);
    this.free.length = 0;
    this.freeBytes = 0;
    for (const name of names) {
      const path = join(this.freeDir, name);
      const size = await stat(path).then(
        (s) => s.size,
        () => Number.POSITIVE_INFINITY,
      );
      if (size <= RECYCLE_MAX_BYTES && this.hasFreeRoomFor(size)) this.keepFree(path, size);
      else await rm(path, { force: true });
    }
    this.freeSeq = names.length;
    // The sent log, kept to the deliveries whose files are still queued.
    const delivered = this.deliveredNow();
    for (const key of [...delivered.keys()]) {
      const slash = key.indexOf('/');
      if (!existsSync(join(this.dir, 'queue', key.slice(0, slash), key.slice(slash + 1)))) delivered.delete(key);
    }
    this.sentLog.rewrite(delivered);
    return { modesTightened };
  }

  async close(): Promise<void> {
    if (!this.locked) return;
    this.locked = false;
    this.sentLog.close();
    await releasePidLock(join(this.dir, 'LOCK'));
  }

  /**
   * Writes a message durably into its account's queue. Resolves only once it is safe on disk, with
   * the file and the header written into it. The two halves, {@link write} and {@link commit}, let
   * a caller do other work (its status row) while the bytes go to disk.
   */
  async enqueue(
    header: Omit<SpoolHeader, 'v' | 'size' | 'sha256'>,
    raw: Buffer,
  ): Promise<{ item: SpoolItem; header: SpoolHeader }> {
    return this.commit(await this.write(header, raw));
  }

  /**
   * The first half of {@link enqueue}: the message and its header written and synced to disk under
   * a name outside the queue, where no drainer sees it. {@link commit} queues it, {@link discard}
   * gives it up.
   */
  async write(header: Omit<SpoolHeader, 'v' | 'size' | 'sha256'>, raw: Buffer): Promise<SpoolDraft> {
    // Field by field: a spread followed by more properties is slow on Node 20 (rows.ts, queuedRow).
    const full: SpoolHeader = {
      v: 1,
      id: header.id,
      tenantId: header.tenantId,
      accountId: header.accountId,
      destinationId: header.destinationId,
      instanceId: header.instanceId,
      envelope: header.envelope,
      messageId: header.messageId,
      createdAt: header.createdAt,
      size: raw.length,
      sha256: createHash('sha256').update(raw).digest('hex'),
    };
    const head = Buffer.from(`${JSON.stringify(full)}\n`);
    const { path: tmp, fd, bytes } = await this.openFile(header.id);
    // A recycled file longer than this message: zeros to its old end, in the same write (see the
    // class comment), so that none of the earlier message's bytes outlive it.
    const tail = bytes - head.length - raw.length;
    const data = Buffer.concat(tail > 0 ? [head, raw, Buffer.alloc(tail)] : [head, raw]);
    try {
      // With fsync on, the file is opened O_DSYNC: each write returns once its data and the file
      // size are on disk (as write + fdatasync, one call fewer). The name becomes durable with
      // the folder's (shared) fsync in commit().
      try {
        await this.writeTemp(fd, data);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw spoolError(err, 'enqueue');
    }
    return { header: full, tmp, bytes: data.length };
  }

  /** The second half of {@link enqueue}: a written message renamed into its account's queue, the folder synced. */
  async commit(draft: SpoolDraft): Promise<{ item: SpoolItem; header: SpoolHeader }> {
    const { header, tmp } = draft;
    const name = `${this.nextSeq()}-${header.id}.msg`;
    let queueDir = this.queueDirs.get(header.accountId);
    let file = '';
    let queued = false;
    try {
      if (queueDir === undefined) {
        queueDir = join(this.dir, 'queue', header.accountId);
        await mkdir(queueDir, { recursive: true, mode: SPOOL_DIR_MODE });
        this.queueDirs.set(header.accountId, queueDir);
      }
      file = `${queueDir}/${name}`; // path.join's normalizing costs more than it is worth here
      renameSync(tmp, file);
      queued = true;
      if (this.fsync) await this.syncDir(queueDir);
    } catch (err) {
      this.queueDirs.delete(header.accountId); // made again next time, should it have gone
      // Not accepted: the file must not stay in the queue, where a drainer would find and send it.
      await rm(queued ? file : tmp, { force: true }).catch(() => undefined);
      throw spoolError(err, 'enqueue');
    }
    return { item: { accountId: header.accountId, id: header.id, file, name, bytes: draft.bytes }, header };
  }

  /**
   * Narrows a queued message to some of its recipients (the server took it for the others and
   * refused these for now): its file is written again with the new envelope and renamed over the
   * old one, the folder synced, keeping its place in the queue. Those who got the message are
   * never sent it again, also after a restart. Returns the new header.
   */
  async narrow(item: SpoolItem, header: SpoolHeader, raw: Buffer, to: string[]): Promise<SpoolHeader> {
    const draft = await this.write(
      {
        id: header.id,
        tenantId: header.tenantId,
        accountId: header.accountId,
        destinationId: header.destinationId,
        instanceId: header.instanceId,
        envelope: { from: header.envelope.from, to },
        messageId: header.messageId,
        createdAt: header.createdAt,
      },
      raw,
    );
    try {
      renameSync(draft.tmp, item.file);
      if (this.fsync) await this.syncDir(join(this.dir, 'queue', item.accountId));
    } catch (err) {
      await rm(draft.tmp, { force: true }).catch(() => undefined);
      throw spoolError(err, 'narrow');
    }
    item.bytes = draft.bytes;
    return draft.header;
  }

  /** A written message that is not to be queued after all: its file is kept for the next message. */
  async discard(draft: SpoolDraft): Promise<void> {
    if (draft.bytes > RECYCLE_MAX_BYTES || !this.hasFreeRoomFor(draft.bytes)) {
      await rm(draft.tmp, { force: true });
      return;
    }
    const target = `${this.freeDir}/${process.pid}-${++this.freeSeq}`;
    try {
      renameSync(draft.tmp, target);
      this.keepFree(target, draft.bytes);
    } catch {
      await rm(draft.tmp, { force: true });
    }
  }

  /** The accounts that have a queue folder. */
  async accounts(): Promise<string[]> {
    return (await readdir(join(this.dir, 'queue'), { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  }

  /** Every dead letter in the spool, of every account (deleted servers' too). */
  async listAllDead(): Promise<SpoolItem[]> {
    let accounts: string[];
    try {
      accounts = (await readdir(join(this.dir, 'dead'), { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const lists = await Promise.all(accounts.map((a) => this.listIn(join(this.dir, 'dead', a), a)));
    return lists.flat();
  }

  /** Removes an account's queue folder if it is empty (its server was deleted); false when files remain. */
  async dropQueueFolder(accountId: string): Promise<boolean> {
    try {
      await rmdir(join(this.dir, 'queue', accountId));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY') return false;
      throw err;
    }
  }

  /** An account's queued messages, oldest first (not those delivered and waiting for their record: {@link listSent}). */
  async list(accountId: string): Promise<SpoolItem[]> {
    const delivered = this.deliveredNow();
    const items = await this.listIn(join(this.dir, 'queue', accountId), accountId);
    return delivered.size === 0 ? items : items.filter((i) => !delivered.has(`${accountId}/${i.name}`));
  }

  /** Reads and verifies a queued file; a file failing its checksum moves to corrupt/ and this throws. */
  async read(item: SpoolItem): Promise<{ header: SpoolHeader; raw: Buffer }> {
    const data = await readFile(item.file);
    const nl = data.indexOf(0x0a);
    try {
      if (nl < 0) throw new Error('no header line');
      const header = JSON.parse(data.subarray(0, nl).toString('utf8')) as SpoolHeader;
      // A recycled file may go on past the message (zeros to the length it keeps).
      const raw = data.subarray(nl + 1, nl + 1 + header.size);
      const sum = createHash('sha256').update(raw).digest('hex');
      if (header.v !== 1 || raw.length !== header.size || sum !== header.sha256) throw new Error('checksum mismatch');
      return { header, raw };
    } catch (err) {
      await rename(item.file, join(this.dir, 'corrupt', `${item.accountId}-${item.name}`)).catch(() => undefined);
      throw new MailroomError(
        'SPOOL_CORRUPT',
        `spool file ${item.name} is damaged (${(err as Error).message}); moved to corrupt/`,
      );
    }
  }

  /**
   * Marks a message delivered (the server answered 250) in the sent log, so that it is never sent
   * again even if the engine stops before the delivery is in the database (the deliveries found
   * marked at start are recorded then). Its file stays where it is until {@link remove}; listings
   * of the queue leave it out. Throws when the mark could not be written.
   */
  markSent(item: SpoolItem): SpoolItem {
    const delivered = this.deliveredNow();
    const key = `${item.accountId}/${item.name}`;
    const at = this.now();
    this.sentLog.append(key, at, delivered);
    delivered.set(key, at);
    if (this.sentLog.wantsRewrite(delivered.size)) {
      try {
        this.sentLog.rewrite(delivered);
      } catch {
        // The longer log still holds every mark; rewritten at a later delivery or at start.
      }
    }
    return item;
  }

  /**
   * An account's delivered messages not yet recorded in the database (see {@link markSent}),
   * oldest first, with the time of their 250: marked in the sent log, or (left by a version
   * that moved them there) in `sent/<account>/`, timed by the move.
   */
  async listSent(accountId: string): Promise<Array<SpoolItem & { sentAt: Date }>> {
    const found: Array<SpoolItem & { sentAt: Date }> = [];
    for (const item of await this.listIn(join(this.dir, 'sent', accountId), accountId)) {
      const moved = await stat(item.file).then(
        (s) => s.ctime,
        () => null, // gone meanwhile
      );
      if (moved) found.push({ ...item, sentAt: moved });
    }
    const queueDir = join(this.dir, 'queue', accountId);
    const prefix = `${accountId}/`;
    for (const [key, at] of this.deliveredNow()) {
      if (!key.startsWith(prefix)) continue;
      const name = key.slice(prefix.length);
      found.push({ accountId, name, file: join(queueDir, name), id: idOf(name), sentAt: new Date(at) });
    }
    return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The marked deliveries whose files are still queued, read from the sent log the first time. */
  private deliveredNow(): Map<string, number> {
    this.delivered ??= this.sentLog.read();
    return this.delivered;
  }

  /**
   * Takes a delivered message out of the queue: its file goes to `free/` for the next message
   * (or is deleted when enough wait there). The folder is not fsynced: the status row already
   * says `sent`, and a file that comes back after a power loss is recognised by it and removed
   * unsent.
   */
  async remove(item: SpoolItem): Promise<void> {
    // Once the file is gone from the queue folder, it is no longer a delivery waiting there (its
    // mark in the log is dropped at the next rewrite); should it stay, it stays marked.
    const gone = (): void => void this.delivered?.delete(`${item.accountId}/${item.name}`);
    try {
      const bytes = item.bytes ?? statSync(item.file).size;
      if (bytes > RECYCLE_MAX_BYTES || !this.hasFreeRoomFor(bytes)) {
        await unlink(item.file);
        gone();
        return;
      }
      const target = `${this.freeDir}/${process.pid}-${++this.freeSeq}`;
      renameSync(item.file, target);
      gone();
      this.keepFree(target, bytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      gone();
    }
  }

  /**
   * A file for a new message, opened for writing at its start: a recycled one from `free/` when
   * there is one, else a new file in `tmp/`. A crash before the rename into the queue leaves it
   * where it was: in `free/` to be reused, or in `tmp/`, cleared at the next start. `bytes` is the
   * file's length before (0 for a new one).
   */
  private async openFile(id: string): Promise<{ path: string; fd: number; bytes: number }> {
    const sync = this.fsync ? constants.O_DSYNC : 0;
    for (let file = this.free.pop(); file !== undefined; file = this.free.pop()) {
      this.freeBytes -= diskBytes(file.bytes);
      try {
        return { path: file.path, fd: openSync(file.path, REUSE | sync), bytes: file.bytes };
      } catch {
        // Gone or unusable: forget it and try the next one.
      }
    }
    const path = `${this.tmpDir}/${id}`;
    try {
      return { path, fd: await openAsync(path, this.fsync ? CREATE_DSYNC : 'wx', SPOOL_FILE_MODE), bytes: 0 };
    } catch (err) {
      throw spoolError(err, 'enqueue');
    }
  }

  /** Moves a message to the account's dead letters, with why. */
  async deadLetter(item: SpoolItem, info: DeadLetterInfo): Promise<void> {
    const deadDir = join(this.dir, 'dead', item.accountId);
    await mkdir(deadDir, { recursive: true, mode: SPOOL_DIR_MODE });
    await writeFile(join(deadDir, `${item.name}.json`), JSON.stringify(info), { mode: SPOOL_FILE_MODE });
    await rename(item.file, join(deadDir, item.name));
    if (this.fsync) await this.syncDir(deadDir);
  }

  async listDead(accountId: string): Promise<Array<SpoolItem & { info: DeadLetterInfo | null }>> {
    const deadDir = join(this.dir, 'dead', accountId);
    const items = await this.listIn(deadDir, accountId);
    return Promise.all(
      items.map(async (item) => ({
        ...item,
        info: await readFile(join(deadDir, `${item.name}.json`), 'utf8')
          .then((t) => JSON.parse(t) as DeadLetterInfo)
          .catch(() => null),
      })),
    );
  }

  /** Puts a dead letter back at the end of its account's queue. */
  async requeueDead(accountId: string, id: string): Promise<boolean> {
    const item = (await this.listDead(accountId)).find((d) => d.id === id);
    if (!item) return false;
    const queueDir = join(this.dir, 'queue', accountId);
    await mkdir(queueDir, { recursive: true, mode: SPOOL_DIR_MODE });
    await rename(item.file, join(queueDir, `${this.nextSeq()}-${id}.msg`));
    await rm(`${item.file}.json`, { force: true });
    if (this.fsync) await this.syncDir(queueDir);
    return true;
  }

  async deleteDead(accountId: string, id: string): Promise<boolean> {
    const item = (await this.listDead(accountId)).find((d) => d.id === id);
    if (!item) return false;
    await rm(item.file, { force: true });
    await rm(`${item.file}.json`, { force: true });
    return true;
  }

  /**
   * Deletes the delivered files kept in `free/` for reuse: they still hold the bytes of messages
   * sent before (an erasure must leave none). New messages get new files until some are freed again.
   */
  async forgetRecycled(): Promise<number> {
    const files = this.free.splice(0, this.free.length);
    this.freeBytes = 0;
    for (const file of files) await rm(file.path, { force: true });
    return files.length;
  }

  /** Whether a delivered file of `bytes` may wait in `free/` within maxFreeBytes. */
  private hasFreeRoomFor(bytes: number): boolean {
    return this.freeBytes + diskBytes(bytes) <= this.maxFreeBytes;
  }

  private keepFree(path: string, bytes: number): void {
    this.free.push({ path, bytes });
    this.freeBytes += diskBytes(bytes);
  }

  /** Writes a temp file's bytes; a seam for tests that need a full disk (ENOSPC). */
  protected async writeTemp(fd: number, data: Buffer): Promise<void> {
    await writeAll(fd, data);
  }

  private async listIn(dir: string, accountId: string): Promise<SpoolItem[]> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .filter((n) => n.endsWith('.msg'))
      .sort()
      .map((name) => ({
        accountId,
        name,
        file: join(dir, name),
        id: idOf(name),
      }));
  }

  /** Increasing, fixed-width names: microseconds since the epoch, unique within the process. */
  private nextSeq(): string {
    const now = this.now() * 1000;
    this.lastMs = Math.max(now, this.lastMs + 1);
    return String(this.lastMs).padStart(17, '0');
  }

  /**
   * fsyncs a folder; callers arriving while a sync of the same folder runs share the next one
   * (group commit: one fsync covers every rename done before it started).
   */
  private syncDir(dir: string): Promise<void> {
    const state = this.dirSyncs.get(dir) ?? { running: null, next: null };
    this.dirSyncs.set(dir, state);
    if (!state.running) {
      state.running = this.syncDirNow(dir).finally(() => {
        state.running = null;
        if (!state.next) this.dirSyncs.delete(dir);
      });
      return state.running;
    }
    state.next ??= state.running
      .catch(() => undefined)
      .then(() => {
        state.next = null;
        return this.syncDir(dir);
      });
    return state.next;
  }

  private async syncDirNow(dir: string): Promise<void> {
    const fd = openSync(dir, constants.O_RDONLY);
    try {
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
  }
}
