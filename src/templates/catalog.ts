import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { backoffDelay } from '../shared/backoff.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { loaderDefaults, loadResponseFile, type LoaderOptions } from './loader.js';
import type { LoadedFile, TemplateProblem } from './types.js';

export interface CatalogOptions extends LoaderOptions {
  /** The templates directory (MAILROOM_TEMPLATES_DIR). */
  dir: string;
  /** [5000] how often file modification times are compared, milliseconds; 0 turns it off. */
  pollIntervalMs?: number;
  /** [true] also reload on file system events (fs.watch), after `debounceMs`. */
  watch?: boolean;
  /** [100] quiet time after a file system event before reloading, milliseconds. */
  debounceMs?: number;
  /**
   * [30000] a file whose remote Src could not be fetched is loaded again (at a reload or periodic
   * check) after about this long, doubling per failure up to `REMOTE_RETRY_MAX_MS`, milliseconds.
   */
  remoteRetryMs?: number;
  /** [systemClock] when remote Src are due to be fetched again. */
  clock?: Clock;
  logger?: Logger;
}

/** [600000] longest wait before a failed remote Src is fetched again, ms. */
const REMOTE_RETRY_MAX_MS = 600_000;

/** What one reload changed, and every problem the directory has now. */
export interface ReloadReport {
  changed: string[];
  removed: string[];
  problems: TemplateProblem[];
}

interface Entry {
  fingerprint: string;
  dependencies: string[];
  /** The last version that loaded; kept while a newer edit is broken. */
  good?: LoadedFile;
  problems: TemplateProblem[];
  /** A remote Src failed: the file is loaded again from this time on (clock ms), changed or not. */
  retryAt?: number;
  /** Loads in a row whose remote Src failed. */
  remoteFailures: number;
}

/**
 * Every response file of the templates directory, kept loaded. A file is reloaded when it or a
 * local Src it uses changes (file system events, plus a periodic check of modification times);
 * a file that no longer loads keeps its last good version in use and reports why.
 */
export class TemplateCatalog {
  readonly events = new EventEmitter<{ reloaded: [ReloadReport] }>();
  private readonly entries = new Map<string, Entry>();
  private dirProblem: TemplateProblem | undefined;
  private running: Promise<ReloadReport> | undefined;
  private queued: Promise<ReloadReport> | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;

  private readonly clock: Clock;
  private readonly remoteRetryMs: number;

  constructor(private readonly options: CatalogOptions) {
    this.clock = options.clock ?? systemClock;
    this.remoteRetryMs = options.remoteRetryMs ?? 30_000;
  }

  /** Loads the directory, then watches it. */
  async start(): Promise<ReloadReport> {
    const report = await this.reload();
    const { pollIntervalMs = 5_000, watch: useWatch = true } = this.options;
    if (pollIntervalMs > 0) {
      this.timer = setInterval(() => void this.reload(), pollIntervalMs);
      this.timer.unref();
    }
    if (useWatch) this.startWatching();
    return report;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = undefined;
    await this.running;
  }

  /** Response files by relative path, broken ones included (see `get` for the version in use). */
  files(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** The version of a file in use: the latest that loaded. */
  get(file: string): LoadedFile | undefined {
    return this.entries.get(file)?.good;
  }

  problems(): TemplateProblem[] {
    const all = [...this.entries.values()].flatMap((e) => e.problems);
    return this.dirProblem ? [this.dirProblem, ...all] : all;
  }

  /** Re-reads what changed. Calls during a reload are folded into one more pass after it. */
  reload(): Promise<ReloadReport> {
    if (this.running) {
      this.queued ??= this.running.then(() => {
        this.queued = undefined;
        return this.reload();
      });
      return this.queued;
    }
    this.running = this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<ReloadReport> {
    const changed: string[] = [];
    const removed: string[] = [];
    try {
      const root = await realpath(this.options.dir);
      this.dirProblem = undefined;
      const files = await listXml(root);
      for (const file of [...this.entries.keys()].filter((f) => !files.includes(f))) {
        this.entries.delete(file);
        removed.push(file);
      }
      for (const file of files) {
        const previous = this.entries.get(file);
        // Taken before the load: an edit made while it runs (a slow remote Src) is seen next time.
        const before = await fingerprintParts(root, [file, ...(previous?.dependencies ?? [])]);
        const now = this.clock.now();
        const retryDue = previous?.retryAt !== undefined && now >= previous.retryAt;
        if (previous && previous.fingerprint === joinParts(before) && !retryDue) continue;
        const load = await loadResponseFile(root, file, loaderDefaults(this.options));
        // Src files found by this load were not known before it: their state now is the best there is.
        const after = await fingerprintParts(
          root,
          load.dependencies.filter((d) => !before.has(d)),
        );
        const remoteFailures = load.remoteFailed ? (previous?.remoteFailures ?? 0) + 1 : 0;
        this.entries.set(file, {
          fingerprint: joinParts(new Map([...before, ...after]), [file, ...load.dependencies]),
          dependencies: load.dependencies,
          good: load.loaded ?? previous?.good,
          problems: load.problems,
          remoteFailures,
          ...(remoteFailures > 0 && {
            retryAt: now + backoffDelay(remoteFailures, { minMs: this.remoteRetryMs, maxMs: REMOTE_RETRY_MAX_MS }),
          }),
        });
        changed.push(file);
        for (const p of load.problems) {
          this.options.logger?.warn({ file: p.file, line: p.line, response: p.response }, `response file: ${p.reason}`);
        }
      }
    } catch (err) {
      this.dirProblem = {
        file: '',
        line: 0,
        severity: 'error',
        reason: `templates directory: ${(err as Error).message}`,
      };
      this.options.logger?.warn({ dir: this.options.dir, err }, 'templates directory cannot be read');
    }
    const report = { changed, removed, problems: this.problems() };
    if (changed.length > 0 || removed.length > 0) this.events.emit('reloaded', report);
    return report;
  }

  private startWatching(): void {
    try {
      this.watcher = watch(this.options.dir, { recursive: true, persistent: false }, () => {
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.reload(), this.options.debounceMs ?? 100);
        this.debounce.unref();
      });
      this.watcher.on('error', (err) => {
        this.options.logger?.warn({ err }, 'watching the templates directory failed; periodic checks go on');
        this.watcher?.close();
      });
    } catch (err) {
      this.options.logger?.warn({ err, dir: this.options.dir }, 'cannot watch the templates directory');
    }
  }
}

/** `*.xml` files below the directory (dot-folders and linked folders skipped), relative, sorted. */
async function listXml(root: string, sub = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(join(root, sub), { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const rel = sub === '' ? entry.name : posix.join(sub, entry.name);
    if (entry.isDirectory()) found.push(...(await listXml(root, rel)));
    else if ((entry.isFile() || entry.isSymbolicLink()) && /\.xml$/i.test(entry.name)) found.push(rel);
  }
  return found.sort();
}

/** What each file looks like now (modification time, size, inode), by relative path. */
async function fingerprintParts(root: string, files: string[]): Promise<Map<string, string>> {
  const parts = new Map<string, string>();
  for (const file of files) {
    const info = await stat(join(root, ...file.split('/'))).catch(() => undefined);
    parts.set(file, info ? `${file}:${info.mtimeMs}:${info.size}:${info.ino}` : `${file}:missing`);
  }
  return parts;
}

/** One string for the files (in this order; all of `parts` when not given). */
function joinParts(parts: Map<string, string>, files: string[] = [...parts.keys()]): string {
  return files.map((f) => parts.get(f)).join('|');
}
