import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  DEFAULT_PARSE_LIMITS,
  ParseFailedError,
  type ExtractedAttachment,
  type ParseFailure,
  type ParseLimits,
  type ParseResult,
  type WorkerRequest,
  type WorkerResponse,
} from './parsed-message.js';

export interface ParsePoolOptions {
  /** [size=2] worker threads; each parses one message at a time. */
  size?: number;
  /** [timeoutMs=10000] milliseconds one message may take in a worker; then the worker is replaced. */
  timeoutMs?: number;
  /** Message limits; each one left out takes its value from `DEFAULT_PARSE_LIMITS`. */
  limits?: Partial<ParseLimits>;
  /** [maxHeapMb=512] old-generation heap of each worker, in MiB; a worker that needs more dies (`worker-crashed`). */
  maxHeapMb?: number;
  /** How small messages are grouped into one worker request; each one left out takes its default. */
  batch?: Partial<BatchLimits>;
  /**
   * [inlineMaxBytes=32768] messages up to this many bytes are parsed on the calling thread (0: none):
   * a small message parses in well under a millisecond, less than a round trip to a worker costs,
   * and bounded input cannot hold the event loop for long. Larger ones always go to a worker.
   */
  inlineMaxBytes?: number;
}

export interface BatchLimits {
  /** [messageMaxBytes=65536] messages up to this many bytes are batched; larger ones travel alone. */
  messageMaxBytes: number;
  /** [maxCount=50] most messages in one batch. */
  maxCount: number;
  /** [maxBytes=1048576] most bytes in one batch. */
  maxBytes: number;
}

const DEFAULT_BATCH_LIMITS: Readonly<BatchLimits> = Object.freeze({
  messageMaxBytes: 64 * 1024,
  maxCount: 50,
  maxBytes: 1024 * 1024,
});

type Outcome = Exclude<WorkerResponse, { type: 'ready' } | { type: 'parsed-batch' }>;
type JobRequest = { kind: 'parse' } | { kind: 'extract'; index: number };

interface Job {
  request: JobRequest;
  raw: Buffer;
  settle: (outcome: Outcome) => void;
  abort: (err: Error) => void;
  /** Never batched: it was in a batch that timed out or crashed, and is retried on its own. */
  alone: boolean;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** The jobs in the worker: one, or a batch of small parse jobs posted together. */
  jobs: Job[] | null;
  /** Whether `jobs` have been posted to the worker (they may still be being copied). */
  sent: boolean;
  timer: NodeJS.Timeout | null;
  retired: boolean;
}

/**
 * Parses raw messages with mailparser in worker threads, so that no message, however hostile, can
 * hold the main event loop (small ones, up to `inlineMaxBytes`, are parsed in place: within the
 * MIME limits checked first, they cannot take long). Messages over the limits are refused before parsing; a message that
 * takes longer than `timeoutMs` gets `parse-timeout` and its worker is terminated and replaced.
 * Small messages waiting together go to a worker in one batch (one copy, one message each way:
 * per-message round trips cost more than parsing a small message); when a batch times out or
 * its worker dies, each of its messages is retried alone, so only the culprit fails.
 * Workers start on first use. Failures of a message resolve as `{ ok: false }`; only a pool that
 * is closed or whose workers cannot start rejects (the message is then not to blame).
 */
export class ParsePool {
  private readonly size: number;
  private readonly timeoutMs: number;
  private readonly limits: ParseLimits;
  private readonly maxHeapMb: number;
  private readonly batch: BatchLimits;
  private readonly inlineMaxBytes: number;
  /** `parse.js`, loaded on the first inline parse (so that a pool without inline parsing never loads mailparser here). */
  private inline: Promise<typeof import('./parse.js')> | undefined;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closing: Promise<void> | null = null;
  private dispatchScheduled = false;

  constructor(options: ParsePoolOptions = {}) {
    this.size = Math.max(1, Math.floor(options.size ?? 2));
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.limits = { ...DEFAULT_PARSE_LIMITS, ...options.limits };
    this.maxHeapMb = options.maxHeapMb ?? 512;
    this.batch = { ...DEFAULT_BATCH_LIMITS, ...options.batch };
    this.inlineMaxBytes = Math.max(0, options.inlineMaxBytes ?? 32 * 1024);
  }

  /** Parses one raw RFC 822 message. Resolves with the message or with why it was not parsed. */
  async parse(raw: Buffer): Promise<ParseResult> {
    const early = this.tooLarge(raw);
    if (early) return early;
    if (raw.length <= this.inlineMaxBytes) {
      if (this.closing) throw new Error('ParsePool is closed');
      this.inline ??= import('./parse.js');
      return (await this.inline).parseMessage(raw, this.limits);
    }
    const outcome = await this.submit({ kind: 'parse' }, raw);
    if (outcome.type === 'parsed') return outcome.result;
    if (outcome.type === 'failed') return outcome.failure;
    return { ok: false, reason: 'worker-crashed', detail: `unexpected worker response ${outcome.type}` };
  }

  /**
   * The decoded bytes of attachment `index` of `raw` (as numbered by `parse`), or null when there
   * is no such attachment. Rejects with `ParseFailedError` when the message cannot be parsed.
   */
  async extractAttachment(raw: Buffer, index: number): Promise<ExtractedAttachment | null> {
    const early = this.tooLarge(raw);
    if (early) throw new ParseFailedError(early);
    const outcome = await this.submit({ kind: 'extract', index }, raw);
    if (outcome.type === 'failed') throw new ParseFailedError(outcome.failure);
    if (outcome.type !== 'extracted') throw new Error(`unexpected worker response ${outcome.type}`);
    if (outcome.attachment === null) return null;
    const { content, ...rest } = outcome.attachment;
    return { ...rest, content: Buffer.from(content.buffer, content.byteOffset, content.byteLength) };
  }

  /** Terminates the workers; pending calls reject. Idempotent: a second call returns the first one's promise. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const stopped = new Error('ParsePool is closed');
    for (const job of this.queue.splice(0)) job.abort(stopped);
    const slots = this.slots.splice(0);
    for (const slot of slots) {
      this.retire(slot);
      for (const job of slot.jobs ?? []) job.abort(stopped);
    }
    this.closing = Promise.all(slots.map((slot) => slot.worker.terminate())).then(() => undefined);
    return this.closing;
  }

  private tooLarge(raw: Buffer): ParseFailure | null {
    if (raw.length <= this.limits.maxBytes) return null;
    return {
      ok: false,
      reason: 'too-large',
      detail: `${raw.length} bytes exceeds the limit of ${this.limits.maxBytes}`,
    };
  }

  private submit(request: JobRequest, raw: Buffer): Promise<Outcome> {
    if (this.closing) return Promise.reject(new Error('ParsePool is closed'));
    return new Promise<Outcome>((settle, abort) => {
      // Spawning may throw (a broken install): the promise then rejects before the job is queued.
      while (this.slots.length < this.size) this.spawn();
      this.queue.push({ request, raw, settle, abort, alone: false });
      // Dispatch once the caller's synchronous loop has queued everything it has: they batch.
      if (!this.dispatchScheduled) {
        this.dispatchScheduled = true;
        queueMicrotask(() => {
          this.dispatchScheduled = false;
          this.dispatch();
        });
      }
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.ready || slot.jobs !== null) continue;
      const jobs = this.takeWork();
      slot.jobs = jobs;
      this.send(slot, jobs).catch((err: unknown) => {
        // Only resources can fail here (no memory for the copy): the messages are not to blame.
        if (slot.jobs !== jobs) return;
        slot.jobs = null;
        for (const job of jobs) job.abort(err instanceof Error ? err : new Error(String(err)));
        this.dispatch();
      });
    }
  }

  /** The next job, with the small parse jobs queued behind it when it is one too. */
  private takeWork(): Job[] {
    const batchable = (job: Job): boolean =>
      job.request.kind === 'parse' && !job.alone && job.raw.length <= this.batch.messageMaxBytes;
    const first = this.queue.shift() as Job;
    if (!batchable(first)) return [first];
    const jobs = [first];
    let bytes = first.raw.length;
    for (let i = 0; i < this.queue.length && jobs.length < this.batch.maxCount;) {
      const job = this.queue[i] as Job;
      if (batchable(job) && bytes + job.raw.length <= this.batch.maxBytes) {
        jobs.push(job);
        bytes += job.raw.length;
        this.queue.splice(i, 1);
      } else i += 1;
    }
    return jobs;
  }

  /** Copies the messages for the worker (without holding the event loop) and posts them; the clock starts then. */
  private async send(slot: Slot, jobs: Job[]): Promise<void> {
    const job = jobs[0] as Job;
    const raw = jobs.length === 1 ? await transferableCopy(job.raw) : concatenated(jobs.map((j) => j.raw));
    if (slot.retired || slot.jobs !== jobs) return;
    const id = this.nextId++;
    const message: WorkerRequest =
      jobs.length > 1
        ? { id, kind: 'parse-batch', raw, lengths: jobs.map((j) => j.raw.length), limits: this.limits }
        : job.request.kind === 'parse'
          ? { id, kind: 'parse', raw, limits: this.limits }
          : { id, kind: 'extract', raw, index: job.request.index, limits: this.limits };
    slot.sent = true;
    slot.timer = setTimeout(() => this.onTimeout(slot), this.timeoutMs);
    slot.worker.postMessage(message, [raw]);
  }

  private spawn(): void {
    const entry = workerEntry();
    const worker = new Worker(entry.filename, {
      eval: entry.eval,
      resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb },
    });
    const slot: Slot = { worker, ready: false, jobs: null, sent: false, timer: null, retired: false };
    worker.on('message', (response: WorkerResponse) => this.onMessage(slot, response));
    worker.on('error', (err: Error) => this.onExit(slot, err.message));
    worker.on('exit', (code: number) => this.onExit(slot, `worker exited with code ${code}`));
    this.slots.push(slot);
  }

  private onMessage(slot: Slot, response: WorkerResponse): void {
    if (slot.retired) return;
    if (response.type === 'ready') slot.ready = true;
    else {
      const jobs = slot.jobs ?? [];
      this.clearTimer(slot);
      slot.jobs = null;
      slot.sent = false;
      if (response.type === 'parsed-batch') {
        for (const [i, job] of jobs.entries()) {
          const result = response.results[i];
          job.settle(
            result
              ? { type: 'parsed', id: response.id, result }
              : { type: 'failed', id: response.id, failure: missingResult() },
          );
        }
      } else jobs[0]?.settle(response);
    }
    this.dispatch();
  }

  private onTimeout(slot: Slot): void {
    const jobs = slot.jobs ?? [];
    this.retire(slot);
    void slot.worker.terminate();
    if (!this.retryAlone(jobs)) {
      jobs[0]?.settle({
        type: 'failed',
        id: 0,
        failure: { ok: false, reason: 'parse-timeout', detail: `parsing took longer than ${this.timeoutMs} ms` },
      });
    }
    this.replace();
  }

  /** A batch that failed as a whole: each of its messages goes back to the queue, to be parsed alone. */
  private retryAlone(jobs: Job[]): boolean {
    if (jobs.length < 2) return false;
    this.queue.unshift(...jobs.map((job) => ({ ...job, alone: true })));
    return true;
  }

  private onExit(slot: Slot, detail: string): void {
    if (slot.retired) return;
    const jobs = slot.jobs ?? [];
    const started = slot.ready;
    this.retire(slot);
    // Jobs still being copied never reached the worker: they go back to the front of the queue.
    if (jobs.length > 0 && !slot.sent) this.queue.unshift(...jobs);
    else if (!this.retryAlone(jobs)) {
      jobs[0]?.settle({ type: 'failed', id: 0, failure: { ok: false, reason: 'worker-crashed', detail } });
    }
    if (!started) {
      // A worker that dies before it is ready is broken, not the message: refuse what waits, and
      // try again on the next call rather than in a loop.
      const err = new Error(`parse worker failed to start: ${detail}`);
      for (const waiting of this.queue.splice(0)) waiting.abort(err);
      return;
    }
    this.replace();
  }

  private replace(): void {
    if (this.closing) return;
    while (this.slots.length < this.size) this.spawn();
    this.dispatch();
  }

  private retire(slot: Slot): void {
    slot.retired = true;
    this.clearTimer(slot);
    const at = this.slots.indexOf(slot);
    if (at !== -1) this.slots.splice(at, 1);
  }

  private clearTimer(slot: Slot): void {
    if (slot.timer !== null) clearTimeout(slot.timer);
    slot.timer = null;
  }
}

function missingResult(): ParseFailure {
  return { ok: false, reason: 'worker-crashed', detail: 'the worker answered a batch without this message' };
}

/** Small messages back to back in one ArrayBuffer of their own, to be transferred to a worker. */
function concatenated(raws: Buffer[]): ArrayBuffer {
  const copy = new Uint8Array(raws.reduce((sum, raw) => sum + raw.length, 0));
  let offset = 0;
  for (const raw of raws) {
    copy.set(raw, offset);
    offset += raw.length;
  }
  return copy.buffer;
}

/** Bytes copied per event-loop turn: first touches of fresh memory cost ~3 ms per MiB on small VMs. */
const COPY_CHUNK_BYTES = 1024 * 1024;

/**
 * A copy of `raw` in an ArrayBuffer of its own, to be transferred (moved, not cloned) to a worker
 * while the caller keeps `raw`. Large messages are copied a chunk per turn of the event loop, so a
 * 25 MiB message never holds the loop for the ~80 ms a single copy can take.
 */
async function transferableCopy(raw: Buffer): Promise<ArrayBuffer> {
  const copy = new Uint8Array(raw.byteLength);
  for (let offset = 0; offset < raw.byteLength; offset += COPY_CHUNK_BYTES) {
    if (offset > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    copy.set(raw.subarray(offset, offset + COPY_CHUNK_BYTES), offset);
  }
  return copy.buffer;
}

/**
 * The worker's entry, with the extension of this module: `.js` when built, `.ts` under tsx.
 * Under tsx the worker inherits `--import tsx`, but on Node 20 its loader hooks do not reach
 * worker threads, so a small bootstrap registers them there before importing the TypeScript entry.
 */
function workerEntry(): { filename: string | URL; eval: boolean } {
  const extension = extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./parse-worker${extension}`, import.meta.url);
  if (extension !== '.ts') return { filename: entry, eval: false };
  const register = `import(${JSON.stringify(tsxEsmApiUrl())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return { filename: register, eval: true };
}

/**
 * URL of tsx's ESM API (`tsx/esm/api`, import condition), read from its package exports: under
 * mocha tsx may load this file as CommonJS, where `import.meta.resolve` does not exist, and the
 * CommonJS build of that API cannot register hooks from a worker.
 */
function tsxEsmApiUrl(): string {
  const manifestPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    exports?: Record<string, { import?: { default?: string } } | undefined>;
  };
  const target = manifest.exports?.['./esm/api']?.import?.default;
  if (target === undefined)
    throw new Error('tsx does not export an ESM ./esm/api; cannot start parse workers from source');
  return pathToFileURL(join(dirname(manifestPath), target)).href;
}
