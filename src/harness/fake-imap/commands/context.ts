/**
 * What a command handler sees of its session, and what it returns. Handlers write untagged
 * responses through the context and return the tagged completion; the session writes the tag.
 */
import type { FaultInjector } from '../faults.js';
import type { MailboxView } from '../mailbox-view.js';
import type { ImapArg } from '../parser.js';
import type { ResponsePart } from '../response.js';
import type { MailStore, UserAccount } from '../store.js';

export type SessionState = 'not-authenticated' | 'authenticated' | 'selected' | 'logout';

export interface Completion {
  status: 'OK' | 'NO' | 'BAD';
  /** Response code without brackets, e.g. `APPENDUID 1 3`. */
  code?: string;
  text: string;
}

export interface ServerSettings {
  /** Whether AUTHENTICATE accepts an initial response on the command line (RFC 4959). */
  saslIr: boolean;
  /** Accepts XOAUTH2 tokens beyond the users' static lists (e.g. the fake identity provider's). */
  verifyAccessToken?: (user: string, token: string) => boolean;
  /** Gmail mode: X-GM-EXT-1 advertised, X-GM-MSGID and X-GM-THRID fetched. */
  gmail?: boolean;
}

export interface CommandContext {
  readonly store: MailStore;
  readonly faults: FaultInjector;
  readonly settings: ServerSettings;
  readonly state: SessionState;
  readonly user: UserAccount | undefined;
  readonly selected: MailboxView | undefined;
  /** The CAPABILITY list as this session should see it now. */
  capabilities(): string[];
  /** Writes `* ` followed by the parts and a line break. */
  untagged(...parts: ResponsePart[]): void;
  /** Sends `+ text` and resolves with the client's next line, without its line break. */
  continuation(text: string): Promise<string>;
  authenticated(user: UserAccount): void;
  select(view: MailboxView): void;
  deselect(): void;
  /** Ends the session after the tagged response (LOGOUT). */
  endAfterResponse(): void;
  /** Tells the client about changes to the selected mailbox now, and again on each change until `stop`. */
  pushUpdates(): { stop(): void };
}

export interface CommandInput {
  /** Upper-cased command name without the UID prefix. */
  name: string;
  uid: boolean;
  args: ImapArg[];
}

export interface CommandSpec {
  /** States the command is valid in. */
  states: readonly SessionState[];
  /** Whether the UID form (`UID FETCH`) exists. */
  uid?: boolean;
  run(ctx: CommandContext, input: CommandInput): Completion | Promise<Completion>;
}

export function ok(text: string, code?: string): Completion {
  return { status: 'OK', text, code };
}

export function no(text: string, code?: string): Completion {
  return { status: 'NO', text, code };
}

export function bad(text: string): Completion {
  return { status: 'BAD', text };
}

export const ANY_STATE: readonly SessionState[] = ['not-authenticated', 'authenticated', 'selected'];
export const AUTHENTICATED: readonly SessionState[] = ['authenticated', 'selected'];
export const SELECTED: readonly SessionState[] = ['selected'];
export const NOT_AUTHENTICATED: readonly SessionState[] = ['not-authenticated'];
