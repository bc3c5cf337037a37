import type { CredentialService } from '../auth/credentials.js';
import { backoffDelay } from '../shared/backoff.js';
import type { ConnectGate } from './connect-gate.js';
import { isMailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { EmailServerRow } from '../store/rows.js';
import { ImapSession, isAuthFailure } from './imap-session.js';
import type { MailboxSync } from './mailbox-sync.js';
import type { InboundOptions } from './options.js';

export type WatcherState = 'connecting' | 'idle' | 'polling' | 'authError' | 'connectError' | 'disabled' | 'stopped';

export interface WatcherStatus {
  state: WatcherState;
  /** The last error in words an administrator can act on, with its time. */
  lastError: string | null;
  lastErrorAt: string | null;
  /** Last successful exchange with the server. */
  lastContactAt: string | null;
  /** Highest UID ingested, per mailbox. */
  lastUid: Record<string, number>;
  idleSupported: boolean | null;
  reconnects: number;
  nextAttemptAt: string | null;
}

/** The status of a server nobody watches yet (or any more). */
export function idleStatus(state: WatcherState): WatcherStatus {
  return {
    state,
    lastError: null,
    lastErrorAt: null,
    lastContactAt: null,
    lastUid: {},
    idleSupported: null,
    reconnects: 0,
    nextAttemptAt: null,
  };
}

export interface WatcherDeps {
  credentials: CredentialService;
  sync: MailboxSync;
  logger: Logger;
  options: InboundOptions;
  /** Bounds concurrent connection set-ups (all watchers of the engine share one). */
  connectGate?: ConnectGate;
}

/**
 * Watches one e-mail server: connects, syncs each mailbox, then waits on IDLE (with a safety
 * sync every few minutes) or polls where IDLE is absent. Errors never leave this object: a refused
 * login or an unreachable host sets the state and retries with jittered exponential backoff,
 * without touching any other server.
 */
export class ServerWatcher {
  private stopped = false;
  /** The next login asks the identity provider for a new token (the last one was refused). */
  private forceRefresh = false;
  private session: ImapSession | undefined;
  private syncing: Promise<void> | undefined;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly status: WatcherStatus = idleStatus('connecting');

  constructor(
    readonly server: EmailServerRow,
    private readonly deps: WatcherDeps,
  ) {
    this.log = deps.logger.child({ tenantId: server.tenantId, serverId: server.id, component: 'inbound' });
  }

  snapshot(): WatcherStatus {
    return { ...this.status, lastUid: { ...this.status.lastUid } };
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops watching: lets a sync in progress finish its current message, logs out. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.status.state = 'stopped';
    clearTimeout(this.timer);
    this.wake?.();
    await this.syncing?.catch(() => undefined);
    await this.session?.close();
    await this.running;
  }

  /** Asks for a sync now (e.g. after an append we know of). */
  poke(): void {
    this.requestSync();
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      try {
        await this.runSession(() => (attempt = 0));
      } catch (err) {
        if (this.stopped) break;
        attempt += 1;
        const auth = isAuthFailure(err) || isMailroomError(err, 'CREDENTIALS_UNAVAILABLE');
        this.fail(auth ? 'authError' : 'connectError', err);
        const { options } = this.deps;
        // An OAuth token the server refused: one quick retry with a freshly acquired token first.
        const refreshFirst = isAuthFailure(err) && this.server.imapAuthMethod === 'oauth2' && !this.forceRefresh;
        this.forceRefresh = refreshFirst;
        const delay = refreshFirst
          ? options.reconnectMinMs
          : auth
            ? backoffDelay(attempt, { minMs: options.authRetryMinMs, maxMs: options.authRetryMaxMs })
            : backoffDelay(attempt, { minMs: options.reconnectMinMs, maxMs: options.reconnectMaxMs });
        this.status.nextAttemptAt = new Date(Date.now() + delay).toISOString();
        await this.sleep(delay);
        this.status.nextAttemptAt = null;
        if (!this.stopped) this.status.reconnects += 1;
      }
    }
  }

  private async runSession(connected: () => void): Promise<void> {
    const { server } = this;
    const { options } = this.deps;
    this.status.state = 'connecting';
    const setUp = async (): Promise<ImapSession | undefined> => {
      if (this.stopped) return undefined; // stopped while waiting for a connect slot
      const login = await this.deps.credentials.imapLogin(server, { forceRefresh: this.forceRefresh });
      return ImapSession.connect({
        host: server.imapHost,
        port: server.imapPort,
        secure: server.imapSecure,
        login,
        logger: this.log,
        socketTimeoutMs: options.socketTimeoutMs,
      });
    };
    const session = await (this.deps.connectGate ? this.deps.connectGate.run(server.imapHost, setUp) : setUp());
    if (!session) return;
    if (this.stopped) {
      await session.close();
      return;
    }
    this.session = session;
    this.forceRefresh = false;
    connected();
    const closed = new Promise<void>((resolve) => session.once('close', resolve));
    try {
      this.status.idleSupported = session.supportsIdle;
      this.markContact();
      // Listen before the first pass: mail arriving during it causes one more pass.
      session.on('exists', () => this.requestSync());
      await this.syncNow(session);
      this.status.state = session.supportsIdle ? 'idle' : 'polling';
      this.status.lastError = null;
      this.log.info({ idle: session.supportsIdle }, 'watching mailbox');
      const every = session.supportsIdle ? options.safetyPollMs : options.pollIntervalMs;
      const tick = (): void => {
        this.timer = setTimeout(() => {
          this.requestSync();
          tick();
        }, every);
      };
      tick();
      session.idle();
      await Promise.race([closed, new Promise<void>((resolve) => (this.wake = resolve))]);
      if (!this.stopped) throw new Error('the server closed the connection');
    } finally {
      clearTimeout(this.timer);
      this.session = undefined;
      await session.close();
    }
  }

  /** A sync request from an event or a timer; a failure drops the connection (the loop reconnects). */
  private requestSync(): void {
    const session = this.session;
    if (!session || this.stopped) return;
    this.syncNow(session).then(
      () => session.idle(),
      async (err: unknown) => {
        if (this.stopped) return;
        this.log.warn({ err }, 'sync failed; reconnecting');
        this.fail('connectError', err);
        await session.close();
      },
    );
  }

  /**
   * Coalesces syncs: one pass at a time per server; requests that arrive during a pass cause
   * exactly one more pass after it. Every caller gets the promise of the passes in flight.
   */
  private syncNow(session: ImapSession): Promise<void> {
    if (this.syncing) {
      this.dirty = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.dirty = false;
          await this.syncAll(session);
        } while (this.dirty && !this.stopped);
      } finally {
        this.syncing = undefined;
      }
    })();
    return this.syncing;
  }

  private async syncAll(session: ImapSession): Promise<void> {
    for (const mailbox of this.deps.options.mailboxes) {
      if (this.stopped) return;
      const result = await this.deps.sync.run(session, this.server, mailbox);
      this.status.lastUid[mailbox] = result.lastUid;
      this.markContact();
    }
  }

  private markContact(): void {
    this.status.lastContactAt = new Date().toISOString();
  }

  private fail(state: 'authError' | 'connectError', err: unknown): void {
    this.status.state = state;
    this.status.lastError = describeError(err, state);
    this.status.lastErrorAt = new Date().toISOString();
    this.log.warn({ state, error: this.status.lastError }, 'mailbox connection failed');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = setTimeout(resolve, ms);
      this.wake = resolve;
    });
  }
}

/** An error in plain words, without secrets. */
export function describeError(err: unknown, state: string): string {
  if (isMailroomError(err)) return err.message;
  const e = err as { message?: string; code?: string; responseText?: string; serverResponseCode?: string };
  if (state === 'authError') {
    return `the server refused the login${e.responseText ? `: ${e.responseText}` : ''} (check the user name and password)`;
  }
  const code = e.code ? ` (${e.code})` : '';
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'the server refused the connection: check the host name and port' + code;
    case 'ENOTFOUND':
      return 'the host name does not resolve' + code;
    case 'ETIMEDOUT':
    case 'CONNECT_TIMEOUT':
    case 'GREETING_TIMEOUT':
      return 'the server did not answer in time' + code;
    default:
      return `${e.message ?? String(err)}${code}`;
  }
}
