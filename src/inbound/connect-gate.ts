import PQueue from 'p-queue';

export interface ConnectLimits {
  /** [32] IMAP connection set-ups (TCP, TLS, login) in progress at once, all servers together. */
  concurrency: number;
  /** [8] set-ups in progress at once towards one host, so one provider is not flooded. */
  perHost: number;
}

export const DEFAULT_CONNECT_LIMITS: Readonly<ConnectLimits> = Object.freeze({ concurrency: 32, perHost: 8 });

/**
 * Spreads IMAP connection set-ups out: a thousand watchers starting together (an engine start, a
 * takeover, a provider coming back) connect a few at a time per host and a bounded number in all,
 * instead of a storm that trips the provider's throttling and the engine's own event loop.
 * Only the set-up passes through the gate; established sessions are not limited here.
 */
export class ConnectGate {
  private readonly all: PQueue;
  private readonly hosts = new Map<string, PQueue>();

  constructor(private readonly limits: ConnectLimits = DEFAULT_CONNECT_LIMITS) {
    this.all = new PQueue({ concurrency: limits.concurrency });
  }

  /** Runs `setUp` once a slot for `host` and a global slot are free. */
  async run<T>(host: string, setUp: () => Promise<T>): Promise<T> {
    const key = host.toLowerCase();
    let queue = this.hosts.get(key);
    if (!queue) {
      queue = new PQueue({ concurrency: this.limits.perHost });
      this.hosts.set(key, queue);
    }
    const hostQueue = queue;
    try {
      return await hostQueue.add(() => this.all.add(setUp));
    } finally {
      if (hostQueue.size === 0 && hostQueue.pending === 0 && this.hosts.get(key) === hostQueue) this.hosts.delete(key);
    }
  }

  /** Set-ups waiting for a slot (for status and tests). */
  get waiting(): number {
    let n = this.all.size;
    for (const q of this.hosts.values()) n += q.size;
    return n;
  }
}
