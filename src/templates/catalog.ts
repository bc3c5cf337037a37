import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
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
  logger?: Logger;
}

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

  constructor(private readonly options: CatalogOptions) {}

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
        const fingerprint = await fingerprintOf(root, [file, ...(previous?.dependencies ?? [])]);
        if (previous && previous.fingerprint === fingerprint) continue;
        const load = await loadResponseFile(root, file, loaderDefaults(this.options));
        this.entries.set(file, {
          fingerprint: await fingerprintOf(root, [file, ...load.dependencies]),
          dependencies: load.dependencies,
          good: load.loaded ?? previous?.good,
          problems: load.problems,
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

async function fingerprintOf(root: string, files: string[]): Promise<string> {
  const parts: string[] = [];
  for (const file of files) {
    const info = await stat(join(root, ...file.split('/'))).catch(() => undefined);
    parts.push(info ? `${file}:${info.mtimeMs}:${info.size}:${info.ino}` : `${file}:missing`);
  }
  return parts.join('|');
}
