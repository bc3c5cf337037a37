/**
 * Fault injection for the fake IMAP server. Rules name a command; `FETCH` matches both `FETCH`
 * and `UID FETCH`, while `UID FETCH` matches only the UID form. A rule applies `times` times
 * (default once; `Infinity` for always), and rules are tried in the order they were added.
 */

export type FaultAction =
  | { kind: 'drop' }
  | { kind: 'delay'; ms: number }
  | { kind: 'reply'; status: 'NO' | 'BAD'; code?: string; text: string };

export interface FaultTimes {
  /** How many matching commands the rule applies to [count]; default 1, `Infinity` for always. */
  times?: number;
}

export interface ReplyFaultOptions extends FaultTimes {
  /** Response code without brackets, e.g. `UNAVAILABLE`. */
  code?: string;
  /** Human-readable text of the tagged response; default `Injected failure`. */
  text?: string;
}

interface FaultRule {
  command: string;
  action: FaultAction;
  remaining: number;
}

export class FaultInjector {
  private rules: FaultRule[] = [];
  private refusingLogins = false;
  private withoutIdle = false;
  /** UIDs left out of FETCH answers, with how many answers each is still left out of. */
  private readonly omitted = new Map<number, number>();

  constructor(options: { idle?: boolean } = {}) {
    this.withoutIdle = options.idle === false;
  }

  /** Destroys the connection, without an answer, when the command arrives. */
  dropConnection(command: string, options: FaultTimes = {}): void {
    this.add(command, { kind: 'drop' }, options);
  }

  /** Waits `ms` milliseconds before running the command. */
  delay(command: string, ms: number, options: FaultTimes = {}): void {
    this.add(command, { kind: 'delay', ms }, options);
  }

  /** Answers the command with a tagged NO or BAD instead of running it. */
  reply(command: string, status: 'NO' | 'BAD', options: ReplyFaultOptions = {}): void {
    this.add(command, { kind: 'reply', status, code: options.code, text: options.text ?? 'Injected failure' }, options);
  }

  /**
   * Leaves the message with this UID out of FETCH answers (the command still succeeds), as a
   * server does with a message another session expunged: listed by SEARCH, never sent.
   */
  omitFromFetch(uid: number, options: FaultTimes = {}): void {
    const times = options.times ?? 1;
    if (!(times > 0)) {
      throw new Error('Fault times must be a positive number');
    }
    this.omitted.set(uid, times);
  }

  /** Whether a FETCH answer leaves this UID out, counting it against its rule. */
  omitsFromFetch(uid: number): boolean {
    const remaining = this.omitted.get(uid);
    if (remaining === undefined) return false;
    if (remaining <= 1) this.omitted.delete(uid);
    else this.omitted.set(uid, remaining - 1);
    return true;
  }

  /** Answers every LOGIN and AUTHENTICATE with `NO [AUTHENTICATIONFAILED]`, whatever the credentials. */
  refuseLogins(refuse = true): void {
    this.refusingLogins = refuse;
  }

  /** Leaves IDLE out of CAPABILITY and answers IDLE with BAD, so clients must poll. */
  disableIdle(disabled = true): void {
    this.withoutIdle = disabled;
  }

  get loginsRefused(): boolean {
    return this.refusingLogins;
  }

  get idleDisabled(): boolean {
    return this.withoutIdle;
  }

  /** Removes every rule and turns login refusal off; the IDLE setting is kept. */
  clear(): void {
    this.rules = [];
    this.omitted.clear();
    this.refusingLogins = false;
  }

  /** The action for a command about to run, counting it against its rule. */
  take(command: string, uid: boolean): FaultAction | undefined {
    const fullName = uid ? `UID ${command}` : command;
    const rule = this.rules.find((candidate) => candidate.command === command || candidate.command === fullName);
    if (!rule) {
      return undefined;
    }
    rule.remaining -= 1;
    if (rule.remaining <= 0) {
      this.rules = this.rules.filter((candidate) => candidate !== rule);
    }
    return rule.action;
  }

  private add(command: string, action: FaultAction, options: FaultTimes): void {
    const times = options.times ?? 1;
    if (!(times > 0)) {
      throw new Error('Fault times must be a positive number');
    }
    this.rules.push({ command: command.trim().toUpperCase().replace(/\s+/g, ' '), action, remaining: times });
  }
}
