import { closeSync, constants, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { SPOOL_FILE_MODE } from './spool-modes.js';

/**
 * The spool's record of deliveries: one line per message the server accepted (250), appended
 * right after the reply, `<accountId>/<file name> <ms since the epoch>`. A delivered message's file
 * stays in its queue folder until the database has the delivery; a line here keeps it from being
 * sent again should the engine stop in between. An append is one small write to a file kept open,
 * where moving the file out of the queue was a rename, both made on the event loop: 1.5 against
 * 15-20 µs on an idle CI machine, about 15 against 30 µs under the outbound benchmark's load. Like that rename it is not fsynced: it outlives the process, not a power
 * loss (after which the status row decides, as for the rest of the spool's moves).
 *
 * The log is rewritten with only the deliveries still waiting (usually a handful) when it has
 * grown well past them, and at every start: write a temporary file, rename it over the log.
 */
export class SentLog {
  private fd: number | null = null;
  /** Lines in the file (counted since it was last rewritten). */
  private lines = 0;
  /** An append failed part-way: the file may end in half a line, so it is rewritten before the next. */
  private damaged = false;

  constructor(readonly path: string) {}

  /** The deliveries recorded in the file (the last time given for a name wins); none when there is no file. */
  read(): Map<string, number> {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    const entries = new Map<string, number>();
    for (const line of text.split('\n')) {
      const space = line.lastIndexOf(' ');
      const at = Number(line.slice(space + 1));
      // A line cut short by a crash or a full disk is skipped: its message was not yet marked.
      if (space > 0 && Number.isSafeInteger(at) && at > 0) entries.set(line.slice(0, space), at);
    }
    return entries;
  }

  /** Records one delivery; throws when it could not be written whole (the caller falls back). */
  append(key: string, at: number, waiting: ReadonlyMap<string, number>): void {
    if (this.damaged || this.fd === null) this.rewrite(waiting);
    const line = `${key} ${at}\n`;
    let written: number;
    try {
      written = writeSync(this.fd as number, line);
    } catch (err) {
      this.damaged = true;
      throw err;
    }
    if (written !== Buffer.byteLength(line)) {
      this.damaged = true;
      throw Object.assign(new Error(`short write to ${this.path} (${written} bytes)`), { code: 'EIO' });
    }
    this.lines += 1;
  }

  /** Whether the file has grown well past the deliveries still waiting (then {@link rewrite} it). */
  wantsRewrite(waiting: number): boolean {
    return this.lines > 1024 && this.lines > 4 * waiting;
  }

  /** Replaces the file with `waiting` alone (temporary file, renamed over it) and appends to the new one. */
  rewrite(waiting: ReadonlyMap<string, number>): void {
    const tmp = `${this.path}.tmp`;
    let text = '';
    for (const [key, at] of waiting) text += `${key} ${at}\n`;
    try {
      writeFileSync(tmp, text, { mode: SPOOL_FILE_MODE });
      renameSync(tmp, this.path);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    this.close();
    this.fd = openSync(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, SPOOL_FILE_MODE);
    this.lines = waiting.size;
    this.damaged = false;
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      closeSync(fd);
    } catch {
      // Nothing of ours is lost: every mark was written (or failed) when it was made.
    }
  }
}
