/** Every command the fake server knows, by name (without the UID prefix). */
import { append } from './append.js';
import { authenticate, login } from './auth.js';
import { capability, enable, id, logout, noop } from './connection.js';
import type { CommandSpec } from './context.js';
import { copy, move } from './copy-move.js';
import { expunge } from './expunge.js';
import { fetch } from './fetch.js';
import { idle } from './idle.js';
import { create, list, lsub, namespace, remove, rename, status, subscribe, unsubscribe } from './mailboxes.js';
import { search } from './search.js';
import { check, close, examine, select, unselect } from './select.js';
import { storeFlags } from './store-flags.js';

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map([
  ['CAPABILITY', capability],
  ['NOOP', noop],
  ['LOGOUT', logout],
  ['ID', id],
  ['ENABLE', enable],
  ['LOGIN', login],
  ['AUTHENTICATE', authenticate],
  ['NAMESPACE', namespace],
  ['LIST', list],
  ['LSUB', lsub],
  ['CREATE', create],
  ['DELETE', remove],
  ['RENAME', rename],
  ['SUBSCRIBE', subscribe],
  ['UNSUBSCRIBE', unsubscribe],
  ['STATUS', status],
  ['APPEND', append],
  ['SELECT', select],
  ['EXAMINE', examine],
  ['CLOSE', close],
  ['UNSELECT', unselect],
  ['CHECK', check],
  ['IDLE', idle],
  ['FETCH', fetch],
  ['SEARCH', search],
  ['STORE', storeFlags],
  ['COPY', copy],
  ['MOVE', move],
  ['EXPUNGE', expunge],
]);

/** Commands after which EXPUNGE responses must wait (RFC 3501 section 7.4.1), unless sent by UID. */
export const NO_EXPUNGE_AFTER = new Set(['FETCH', 'STORE', 'SEARCH']);
