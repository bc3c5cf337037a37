/**
 * A fake IMAP server for tests and local runs: the IMAP4rev1 subset the real imapflow client
 * uses (login, mailboxes, fetch, flags, move, expunge, append, IDLE), an in-memory store, and
 * fault injection. Start one with `startFakeImap()`; see server.ts for the API.
 */
export { startFakeImap } from './server.js';
export type {
  AppendOptions,
  AppendResult,
  FakeImapOptions,
  FakeImapServer,
  FakeImapUser,
  FakeMessage,
  MailboxInfo,
} from './server.js';
export type { FaultAction, FaultInjector, FaultTimes, ReplyFaultOptions } from './faults.js';
export type { TraceEntry } from './session.js';
