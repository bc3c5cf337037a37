import type { CredentialService } from '../auth/credentials.js';
import { backoffDelay } from '../shared/backoff.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { ConnectGate } from './connect-gate.js';
import { isMailroomError } from '../shared/errors.js';
import { serverLogFields, type Logger } from '../shared/logger.js';
import { imapReconnects } from '../shared/metrics.js';
import type { EmailServerRow } from '../store/rows.js';
import { connectImap } from './imap-connect.js';
import { describeImapError, isAuthFailure } from './imap-errors.js';
import type { ImapSession, ImapSessionOptions } from './imap-session.js';
import type { MailboxSync, SyncResult } from './mailbox-sync.js';
import type { InboundOptions } from './options.js';

export type WatcherState = 'connecting' | 'idle' | 'polling' | 'authError' | 'connectError' | 'disabled' | 'stopped';

/**
 * How the engine learns of new mail on a watched server (issue 30, item 5): `idle`, the server
 * announces it (IMAP IDLE, push) and a safety sync runs every `pollIntervalMs` besides (so a
 * server whose announcements come late, or never, is still read within that time); `poll`, the
 * server has no IDLE and is asked every `pollIntervalMs`. Null until a session has logged in.
 */
export interface NewMailWatch {
  by: 'idle' | 'poll' | null;
  /** With `idle` the safety sync's interval (MAILROOM_IMAP_SAFETY_POLL_MS), else the poll's (MAILROOM_IMAP_POLL_INTERVAL_MS), ms. */
  pollIntervalMs: number | null;
}

/**
 * A watcher's state. It shows either the current problem (`lastError` and `lastErrorAt` set while
 * the connection fails and is retried) or, once watching again, when the last problem ended
 * (`lastProblemEndedAt`): never a mix (issue 30, item 4).
 */
export interface WatcherStatus {
  state: WatcherState;
  /** The current error in words an administrator can act on, with its time; null while watching. */
  lastError: string | null;
  lastErrorAt: string | null;
  /** While watching: when the last error's problem ended (null when there was none). */
  lastProblemEndedAt: string | null;
  newMail: NewMailWatch;
  /** Last successful exchange with the server. */
  lastContactAt: string | null;
  /** Highest UID ingested, per mailbox. */
  lastUid: Record<string, number>;
  /** Folders of the server's list that are not read, with why (Gmail's All Mail: `mailbox-sync.ts`). */
  notWatched: Record<string, string>;
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
    lastProblemEndedAt: null,
    newMail: { by: null, pollIntervalMs: null },
    lastContactAt: null,
    lastUid: {},
    notWatched: {},
    idleSupported: null,
    reconnects: 0,
    nextAttemptAt: null,
  };
}

/** Why a folder the server lists as `\All` (Gmail's All Mail) is not read. */
const NOT_WATCHED_ALL_MAIL =
  "the mailbox's All Mail (\\All): it holds sent mail and drafts too; watch INBOX and the labels mail arrives in";

/** [2] IMAP sessions per server when its "maximum IMAP sessions" is 0 (the engine's default). */
export const DEFAULT_MAX_SESSIONS = 2;

export interface WatcherDeps {
  credentials: CredentialService;
  sync: MailboxSync;
  logger: Logger;
  options: InboundOptions;
  /** Bounds concurrent connection set-ups (all watchers of the engine share one). */
  connectGate?: ConnectGate;
  /** The tenant's name, for log lines (they name tenant and server by name as well as id). */
  tenantName?: string | undefined;
  /** [the system clock] the timers of polls and reconnect backoff. */
  clock?: Clock;
}

/**
 * Watches one e-mail server: connects, syncs each mailbox, then waits on IDLE (with a safety
 * sync every few minutes) or polls where IDLE is absent. When the server allows two sessions, a
 * second connection stays in IDLE on the first mailbox all the time while the first one fetches:
 * new mail is announced without waiting for the fetching connection to re-enter IDLE (servers
 * such as Dovecot report changes only some time after IDLE starts). Errors never leave this
 * object: a refused login or an unreachable host sets the state and retries with jittered
 * exponential backoff, without touching any other server.
 */
export class ServerWatcher {
  private stopped = false;
  /** The next login asks the identity provider for a new token (the last one was refused). */
  private forceRefresh = false;
  /** Credentials were renewed while waiting to retry (see credentialsRenewed). */
  private renewed = false;
  private session: ImapSession | undefined;
  /** The second connection, which only idles (absent with one session allowed, or without IDLE). */
  private idler: ImapSession | undefined;
  /** The passes in flight and the session they run on: a pass is never handed to another session. */
  private syncing: { session: ImapSession; pass: Promise<void> } | undefined;
  private dirty = false;
  private timer: unknown;
  private readonly clock: Clock;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  /** Aborted by `stop()`: a pass in progress stops after the batch it is storing. */
  private readonly stopping = new AbortController();
  private readonly log: Logger;
  private readonly status: WatcherStatus = idleStatus('connecting');
  /** Each mailbox's last completed pass: a safety sync finding it unchanged needs no database. */
  private readonly lastPass = new Map<string, SyncResult>();

  constructor(
    readonly server: EmailServerRow,
    private readonly deps: WatcherDeps,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.log = deps.logger.child({ ...serverLogFields(server, deps.tenantName), component: 'inbound' });
  }

  snapshot(): WatcherStatus {
    return {
      ...this.status,
      lastUid: { ...this.status.lastUid },
      notWatched: { ...this.status.notWatched },
      newMail: { ...this.status.newMail },
    };
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops watching: lets a sync in progress finish the batch it is storing, logs out. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.status.state = 'stopped';
    this.clock.clearTimeout(this.timer);
    this.wake?.();
    await this.syncing?.pass.catch(() => undefined);
    await Promise.all([this.session?.close(), this.idler?.close()]);
    await this.running;
  }

  /** Asks for a sync now (e.g. after an append we know of). */
  poke(): void {
    this.requestSync();
  }

  /**
   * New credentials (a completed OAuth 2.0 sign-in): a retry waiting out its delay (up to
   * `authRetryMaxMs` after refused logins) is made now, its backoff started over. A watcher that
   * is connected or connecting has nothing to wait out.
   */
  credentialsRenewed(): void {
    if (this.status.nextAttemptAt === null || this.stopped) return;
    this.renewed = true;
    this.clock.clearTimeout(this.timer);
    this.wake?.();
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
        imapReconnects.inc({
          tenant_id: this.server.tenantId,
          server_id: this.server.id,
          reason: auth ? 'auth' : 'connect',
        });
        const { options } = this.deps;
        // An OAuth token the server refused: one quick retry with a freshly acquired token first.
        const refreshFirst = isAuthFailure(err) && this.server.imapAuthMethod === 'oauth2' && !this.forceRefresh;
        this.forceRefresh = refreshFirst;
        const delay = refreshFirst
          ? options.reconnectMinMs
          : auth
            ? backoffDelay(attempt, { minMs: options.authRetryMinMs, maxMs: options.authRetryMaxMs })
            : backoffDelay(attempt, { minMs: options.reconnectMinMs, maxMs: options.reconnectMaxMs });
        this.status.nextAttemptAt = new Date(this.clock.now() + delay).toISOString();
        await this.sleep(delay);
        this.status.nextAttemptAt = null;
        if (this.renewed) {
          // Signed in meanwhile: the new tokens are in the cache, no refresh needed; a new count.
          this.renewed = false;
          this.forceRefresh = false;
          attempt = 0;
        }
        if (!this.stopped) this.status.reconnects += 1;
      }
    }
  }

  /** One session, from login to its end (it throws why); `worked` is called once its first pass is done. */
  private async runSession(worked: () => void): Promise<void> {
    const { server } = this;
    const { options } = this.deps;
    this.status.state = 'connecting';
    const setUp = async (extra: Partial<ImapSessionOptions> = {}): Promise<ImapSession | undefined> => {
      if (this.stopped) return undefined; // stopped while waiting for a connect slot
      return connectImap(
        server,
        {
          credentials: this.deps.credentials,
          logger: this.log,
          proxies: options.proxies,
          mailAddresses: options.mailAddresses,
        },
        { forceRefresh: this.forceRefresh, socketTimeoutMs: options.socketTimeoutMs, ...extra },
      );
    };
    const gated = (extra?: Partial<ImapSessionOptions>): Promise<ImapSession | undefined> =>
      this.deps.connectGate ? this.deps.connectGate.run(server.imapHost, () => setUp(extra)) : setUp(extra);
    const session = await gated();
    if (!session) return;
    if (this.stopped) {
      await session.close();
      return;
    }
    this.session = session;
    this.forceRefresh = false;
    let closed = new Promise<void>((resolve) => session.once('close', resolve));
    try {
      this.status.idleSupported = session.supportsIdle;
      this.markContact();
      // Listen before the first pass: mail arriving during it causes one more pass.
      session.on('exists', () => this.requestSync());
      await this.syncNow(session);
      // Only now does the reconnect backoff start over: a session that fails after its login (a
      // mailbox gone, the database down) must back off as a refused connection does.
      worked();
      const every = session.supportsIdle ? options.safetyPollMs : options.pollIntervalMs;
      this.status.state = session.supportsIdle ? 'idle' : 'polling';
      this.status.newMail = { by: session.supportsIdle ? 'idle' : 'poll', pollIntervalMs: every };
      if (this.status.lastError !== null) {
        this.status.lastError = null;
        this.status.lastErrorAt = null;
        this.status.lastProblemEndedAt = new Date().toISOString();
      }
      this.log.info({ idle: session.supportsIdle, pollIntervalMs: every }, 'watching mailbox');
      const tick = (): void => {
        this.timer = this.clock.setTimeout(() => {
          this.requestSync();
          tick();
        }, every);
      };
      tick();
      session.idle();
      const idler = session.supportsIdle ? await this.startIdler(gated) : undefined;
      if (idler) closed = Promise.race([closed, new Promise<void>((resolve) => idler.once('close', resolve))]);
      await Promise.race([closed, new Promise<void>((resolve) => (this.wake = resolve))]);
      if (!this.stopped) throw new Error('the server closed the connection');
    } finally {
      this.clock.clearTimeout(this.timer);
      this.session = undefined;
      const idler = this.idler;
      this.idler = undefined;
      await idler?.close();
      await session.close();
      // Its pass ends soon on the closed connection (or finishes a commit); the next session
      // starts only after it, so that it never finds this session's pass in flight.
      if (this.syncing?.session === session) await this.syncing.pass.catch(() => undefined);
    }
  }

  /**
   * Opens the second connection, which idles on the first mailbox for good, when the server's
   * "maximum IMAP sessions" allows two (0 means the engine's default). A server that refuses the
   * second connection is watched with one, as with a maximum of 1.
   */
  private async startIdler(
    connect: (extra: Partial<ImapSessionOptions>) => Promise<ImapSession | undefined>,
  ): Promise<ImapSession | undefined> {
    const allowed = this.server.imapMaxSessions === 0 ? DEFAULT_MAX_SESSIONS : this.server.imapMaxSessions;
    const mailbox = this.folders[0];
    if (allowed < 2 || mailbox === undefined || this.stopped) return undefined;
    let idler: ImapSession | undefined;
    try {
      idler = await connect({ maxIdleTimeMs: this.deps.options.safetyPollMs });
      if (!idler) return undefined;
      await idler.openMailbox(mailbox);
    } catch (err) {
      await idler?.close();
      this.log.warn({ err }, 'a second IMAP session for IDLE could not be opened; watching with one');
      return undefined;
    }
    if (this.stopped) {
      await idler.close();
      return undefined;
    }
    this.idler = idler;
    idler.on('exists', () => this.requestSync());
    idler.keepIdling();
    return idler;
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
   * exactly one more pass after it, on the same session. Every caller gets the promise of the
   * passes in flight on its session; a pass of an earlier session is waited for, never shared.
   */
  private syncNow(session: ImapSession): Promise<void> {
    if (this.syncing && this.syncing.session !== session) {
      return this.syncing.pass.catch(() => undefined).then(() => this.syncNow(session));
    }
    if (this.syncing) {
      this.dirty = true;
      return this.syncing.pass;
    }
    const pass = (async () => {
      try {
        do {
          this.dirty = false;
          await this.syncAll(session);
        } while (this.dirty && !this.stopped && session.usable);
      } finally {
        this.syncing = undefined;
      }
    })();
    this.syncing = { session, pass };
    return pass;
  }

  /** The folders watched: the server's own list, else the engine's default (INBOX). */
  private get folders(): string[] {
    return this.server.imapFolders.length > 0 ? this.server.imapFolders : this.deps.options.mailboxes;
  }

  private async syncAll(session: ImapSession): Promise<void> {
    for (const mailbox of this.folders) {
      if (this.stopped) return;
      const previous = this.lastPass.get(mailbox);
      this.lastPass.delete(mailbox); // a pass that fails proves nothing for the next one
      const result = await this.deps.sync.run(session, this.server, mailbox, this.stopping.signal, this.log, previous);
      this.lastPass.set(mailbox, result);
      this.status.lastUid[mailbox] = result.lastUid;
      if (result.notWatched) this.status.notWatched[mailbox] = NOT_WATCHED_ALL_MAIL;
      this.markContact();
    }
  }

  private markContact(): void {
    this.status.lastContactAt = new Date().toISOString();
  }

  private fail(state: 'authError' | 'connectError', err: unknown): void {
    this.status.state = state;
    this.status.lastError = describeImapError(err, state);
    this.status.lastErrorAt = new Date().toISOString();
    this.status.lastProblemEndedAt = null;
    this.log.warn({ state, error: this.status.lastError }, 'mailbox connection failed');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = this.clock.setTimeout(resolve, ms);
      this.wake = resolve;
    });
  }
}
