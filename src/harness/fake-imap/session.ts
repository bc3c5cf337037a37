/**
 * One client connection: frames the input, runs one command at a time, reports changes to the
 * selected mailbox before each tagged answer (and at once while idling), and applies the
 * fault injector's rules before a command runs.
 */
import type { Socket } from 'node:net';
import { COMMANDS, NO_EXPUNGE_AFTER } from './commands/index.js';
import type { CommandContext, Completion, ServerSettings, SessionState } from './commands/context.js';
import type { FaultInjector } from './faults.js';
import { CommandFramer } from './framer.js';
import type { MailboxView } from './mailbox-view.js';
import { argText, CommandSyntaxError, parseCommand, type ParsedCommand } from './parser.js';
import type { ResponsePart } from './response.js';
import type { MailStore, UserAccount } from './store.js';

/** One line of protocol traffic, for debugging tests; credentials are not included. */
export interface TraceEntry {
  sessionId: number;
  direction: 'client' | 'server';
  text: string;
}

export interface SessionOptions {
  id: number;
  store: MailStore;
  faults: FaultInjector;
  settings: ServerSettings;
  trace?: (entry: TraceEntry) => void;
}

/** Longest traced line [characters]; the rest (message bodies) is cut. */
const TRACE_LENGTH = 200;

/** The client's line as traced: LOGIN and AUTHENTICATE show the command and mechanism only. */
function traceText(command: ParsedCommand, frame: Buffer): string {
  if (command.name === 'LOGIN') {
    return `${command.tag} LOGIN (credentials hidden)`;
  }
  if (command.name === 'AUTHENTICATE') {
    return `${command.tag} AUTHENTICATE ${argText(command.args[0]) ?? ''} (credentials hidden)`;
  }
  return frame.toString('utf8');
}

class SessionClosedError extends Error {
  constructor() {
    super('The connection closed');
    this.name = 'SessionClosedError';
  }
}

interface PendingTimer {
  timer: NodeJS.Timeout;
  resolve(): void;
}

export class Session implements CommandContext {
  readonly store: MailStore;
  readonly faults: FaultInjector;
  readonly settings: ServerSettings;
  state: SessionState = 'not-authenticated';
  user: UserAccount | undefined;
  selected: MailboxView | undefined;

  private readonly framer: CommandFramer;
  private readonly queue: Buffer[] = [];
  private readonly timers = new Set<PendingTimer>();
  private readonly stopListening: () => void;
  private running = false;
  private closed = false;
  private endRequested = false;
  private lineWaiter: { resolve(line: string): void; reject(err: Error): void } | undefined;
  private pushing: (() => void) | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly options: SessionOptions,
  ) {
    this.store = options.store;
    this.faults = options.faults;
    this.settings = options.settings;
    this.framer = new CommandFramer({
      frame: (bytes) => this.onFrame(bytes),
      literalRequested: () => this.write(['+ Ready for literal data']),
      overflow: (reason) => {
        this.write([`* BYE ${reason}`]);
        this.socket.end();
      },
    });
    this.stopListening = this.store.onChange((_user, mailbox) => {
      if (this.pushing && this.selected?.mailbox === mailbox) {
        this.pushing();
      }
    });
    socket.on('data', (chunk: Buffer) => this.framer.push(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
    this.write([`* OK [CAPABILITY ${this.capabilities().join(' ')}] Mailroom fake IMAP ready`]);
  }

  /** Says goodbye and ends the connection; destroys it if the client does not close within `graceMs`. */
  shutdown(graceMs: number, reason = 'Server shutting down'): Promise<void> {
    if (this.closed) {
      return Promise.resolve();
    }
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    const timer = setTimeout(() => this.socket.destroy(), graceMs);
    this.socket.once('close', () => clearTimeout(timer));
    this.write([`* BYE ${reason}`]);
    this.socket.end();
    return closed;
  }

  capabilities(): string[] {
    const capabilities = [
      'IMAP4rev1',
      'LITERAL+',
      'ID',
      'ENABLE',
      'NAMESPACE',
      'UIDPLUS',
      'MOVE',
      'UNSELECT',
      'SPECIAL-USE',
    ];
    if (!this.faults.idleDisabled) {
      capabilities.push('IDLE');
    }
    // Gmail advertises its extensions as X-GM-EXT-1 (https://developers.google.com/gmail/imap/imap-extensions).
    if (this.settings.gmail) capabilities.push('X-GM-EXT-1');
    if (this.state === 'not-authenticated') {
      capabilities.push(...(this.settings.saslIr ? ['SASL-IR'] : []), 'AUTH=PLAIN', 'AUTH=XOAUTH2');
    }
    return capabilities;
  }

  untagged(...parts: ResponsePart[]): void {
    this.write(['* ', ...parts]);
  }

  continuation(text: string): Promise<string> {
    if (this.closed) {
      return Promise.reject(new SessionClosedError());
    }
    const line = new Promise<string>((resolve, reject) => {
      this.lineWaiter = { resolve, reject };
    });
    this.write([`+ ${text}`]);
    return line;
  }

  authenticated(user: UserAccount): void {
    this.user = user;
    this.state = 'authenticated';
  }

  select(view: MailboxView): void {
    this.selected = view;
    this.state = 'selected';
  }

  deselect(): void {
    this.selected = undefined;
    if (this.state === 'selected') {
      this.state = 'authenticated';
    }
  }

  endAfterResponse(): void {
    this.endRequested = true;
  }

  pushUpdates(): { stop(): void } {
    const push = (): void => {
      for (const line of this.selected?.sync(true) ?? []) {
        this.untagged(line);
      }
    };
    push();
    this.pushing = push;
    return {
      stop: () => {
        if (this.pushing === push) {
          this.pushing = undefined;
        }
      },
    };
  }

  private onFrame(frame: Buffer): void {
    const waiter = this.lineWaiter;
    if (waiter) {
      this.lineWaiter = undefined;
      this.trace('client', '(continuation line)');
      waiter.resolve(frame.toString('utf8').replace(/\r?\n$/, ''));
      return;
    }
    this.queue.push(frame);
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.running) {
      return;
    }
    this.running = true;
    try {
      for (let frame = this.queue.shift(); frame && !this.closed; frame = this.queue.shift()) {
        await this.execute(frame);
      }
    } finally {
      this.running = false;
    }
  }

  private async execute(frame: Buffer): Promise<void> {
    let command: ParsedCommand;
    try {
      command = parseCommand(frame);
    } catch (err) {
      const tag = err instanceof CommandSyntaxError && err.tag ? err.tag : '*';
      this.trace('client', frame.toString('utf8'));
      this.complete(tag, { status: 'BAD', text: err instanceof Error ? err.message : 'Syntax error' });
      return;
    }
    const fullName = command.uid ? `UID ${command.name}` : command.name;
    this.trace('client', traceText(command, frame));
    const spec = COMMANDS.get(command.name);
    if (!spec || (command.uid && !spec.uid)) {
      this.complete(command.tag, { status: 'BAD', text: `Unknown command ${fullName}` });
      return;
    }
    if (!spec.states.includes(this.state)) {
      this.complete(command.tag, { status: 'BAD', text: `${fullName} is not valid in this state` });
      return;
    }
    const fault = this.faults.take(command.name, command.uid);
    if (fault?.kind === 'drop') {
      this.socket.destroy();
      return;
    }
    if (fault?.kind === 'reply') {
      this.complete(command.tag, { status: fault.status, code: fault.code, text: fault.text });
      return;
    }
    if (fault?.kind === 'delay') {
      await this.sleep(fault.ms);
    }
    if (this.closed) {
      return;
    }
    let completion: Completion;
    try {
      completion = await spec.run(this, command);
    } catch (err) {
      if (err instanceof SessionClosedError) {
        return;
      }
      completion = { status: 'BAD', text: `Internal error: ${err instanceof Error ? err.message : String(err)}` };
    }
    const expunges = command.uid || !NO_EXPUNGE_AFTER.has(command.name);
    for (const line of this.selected?.sync(expunges) ?? []) {
      this.untagged(line);
    }
    this.complete(command.tag, completion);
    if (this.endRequested) {
      this.state = 'logout';
      this.socket.end();
    }
  }

  private complete(tag: string, completion: Completion): void {
    const code = completion.code ? `[${completion.code}] ` : '';
    this.write([`${tag} ${completion.status} ${code}${completion.text}`]);
  }

  private write(parts: ResponsePart[]): void {
    if (this.closed || !this.socket.writable) {
      return;
    }
    const bytes = Buffer.concat(
      [...parts, '\r\n'].map((part) => (typeof part === 'string' ? Buffer.from(part) : part)),
    );
    this.trace('server', bytes.toString('utf8'));
    this.socket.write(bytes);
  }

  private trace(direction: TraceEntry['direction'], text: string): void {
    const trimmed = text.replace(/\r?\n$/, '');
    this.options.trace?.({
      sessionId: this.options.id,
      direction,
      text: trimmed.length > TRACE_LENGTH ? `${trimmed.slice(0, TRACE_LENGTH)}...` : trimmed,
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const pending: PendingTimer = {
        timer: setTimeout(() => {
          this.timers.delete(pending);
          resolve();
        }, ms),
        resolve,
      };
      this.timers.add(pending);
    });
  }

  private onClose(): void {
    this.closed = true;
    this.state = 'logout';
    this.stopListening();
    this.pushing = undefined;
    for (const pending of this.timers) {
      clearTimeout(pending.timer);
      pending.resolve();
    }
    this.timers.clear();
    const waiter = this.lineWaiter;
    this.lineWaiter = undefined;
    waiter?.reject(new SessionClosedError());
  }
}
