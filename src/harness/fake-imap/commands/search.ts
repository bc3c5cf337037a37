/**
 * SEARCH and UID SEARCH (RFC 3501 section 6.4.4): flags and keywords, sequence and UID sets,
 * NOT, OR and parenthesised groups, sizes, internal and sent dates, and substring matches on
 * header fields, the body and the whole text. Matching is case-insensitive on the raw bytes.
 */
import type { ViewEntry } from '../mailbox-view.js';
import { splitMessage } from '../message-parts.js';
import { argText, type ImapArg } from '../parser.js';
import { parseSearchDate } from '../response.js';
import { inSequenceSet, parseSequenceSet } from '../sequence-set.js';
import type { StoredMessage } from '../store.js';
import { bad, ok, SELECTED, type CommandSpec } from './context.js';

interface SearchScope {
  exists: number;
  largestUid: number;
}

type Matcher = (entry: ViewEntry, scope: SearchScope) => boolean;

const DAY = 24 * 60 * 60 * 1000;

const FLAG_KEYS: Record<string, [flag: string, present: boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};

const ADDRESS_KEYS = new Set(['FROM', 'TO', 'CC', 'BCC', 'SUBJECT']);

class SearchSyntaxError extends Error {}

function contains(haystack: Buffer | string, needle: string): boolean {
  const text = typeof haystack === 'string' ? haystack : haystack.toString('utf8');
  return text.toLowerCase().includes(needle.toLowerCase());
}

/** The unfolded values of a header field, joined; empty when the field is absent. */
function headerValues(message: StoredMessage, name: string): string {
  const header = splitMessage(message.raw)
    .header.toString('utf8')
    .replace(/\r?\n[ \t]/g, ' ');
  const prefix = `${name.toLowerCase()}:`;
  return header
    .split(/\r?\n/)
    .filter((line) => line.toLowerCase().startsWith(prefix))
    .map((line) => line.slice(prefix.length).trim())
    .join('\n');
}

function sentDate(message: StoredMessage): Date | undefined {
  const parsed = Date.parse(headerValues(message, 'date'));
  return Number.isNaN(parsed) ? undefined : new Date(parsed);
}

/** Compares whole UTC days, the granularity of SEARCH dates. */
function dayCompare(date: Date | undefined, day: Date, test: 'BEFORE' | 'ON' | 'SINCE'): boolean {
  if (!date) {
    return false;
  }
  const start = day.getTime();
  switch (test) {
    case 'BEFORE':
      return date.getTime() < start;
    case 'ON':
      return date.getTime() >= start && date.getTime() < start + DAY;
    case 'SINCE':
      return date.getTime() >= start;
  }
}

class CriteriaParser {
  private pos = 0;

  constructor(private readonly args: readonly ImapArg[]) {}

  parseAll(): Matcher {
    const matchers: Matcher[] = [];
    while (this.pos < this.args.length) {
      matchers.push(this.parseOne());
    }
    return (entry, scope) => matchers.every((matcher) => matcher(entry, scope));
  }

  private text(): string {
    const value = argText(this.args[this.pos++]);
    if (value === undefined) {
      throw new SearchSyntaxError('SEARCH key is missing its argument');
    }
    return value;
  }

  private date(): Date {
    const value = parseSearchDate(this.text());
    if (!value) {
      throw new SearchSyntaxError('Invalid SEARCH date');
    }
    return value;
  }

  private number(): number {
    const value = this.text();
    if (!/^\d+$/.test(value)) {
      throw new SearchSyntaxError('Invalid SEARCH number');
    }
    return Number(value);
  }

  private parseOne(): Matcher {
    const arg = this.args[this.pos++];
    if (arg?.kind === 'list') {
      return new CriteriaParser(arg.items).parseAll();
    }
    const key = argText(arg) ?? '';
    const upper = key.toUpperCase();
    const flagKey = FLAG_KEYS[upper];
    if (flagKey) {
      const [flag, present] = flagKey;
      return ({ message }) => message.flags.has(flag) === present;
    }
    if (ADDRESS_KEYS.has(upper)) {
      const needle = this.text();
      return ({ message }) => contains(headerValues(message, upper), needle);
    }
    switch (upper) {
      case 'ALL':
        return () => true;
      case 'NEW':
        return ({ message }) => message.recent && !message.flags.has('\\Seen');
      case 'RECENT':
        return ({ message }) => message.recent;
      case 'OLD':
        return ({ message }) => !message.recent;
      case 'KEYWORD':
      case 'UNKEYWORD': {
        const keyword = this.text();
        return ({ message }) => message.flags.has(keyword) === (upper === 'KEYWORD');
      }
      case 'NOT': {
        const inner = this.parseOne();
        return (entry, scope) => !inner(entry, scope);
      }
      case 'OR': {
        const left = this.parseOne();
        const right = this.parseOne();
        return (entry, scope) => left(entry, scope) || right(entry, scope);
      }
      case 'UID': {
        const ranges = parseSequenceSet(this.text());
        if (!ranges) {
          throw new SearchSyntaxError('Invalid UID set');
        }
        return ({ message }, scope) => inSequenceSet(ranges, message.uid, scope.largestUid);
      }
      case 'LARGER':
      case 'SMALLER': {
        const size = this.number();
        return ({ message }) => (upper === 'LARGER' ? message.raw.length > size : message.raw.length < size);
      }
      case 'BEFORE':
      case 'ON':
      case 'SINCE': {
        const day = this.date();
        return ({ message }) => dayCompare(message.internalDate, day, upper);
      }
      case 'SENTBEFORE':
      case 'SENTON':
      case 'SENTSINCE': {
        const day = this.date();
        const test = upper.slice(4) as 'BEFORE' | 'ON' | 'SINCE';
        return ({ message }) => dayCompare(sentDate(message), day, test);
      }
      case 'HEADER': {
        const name = this.text();
        const needle = this.text();
        return ({ message }) => headerValues(message, name) !== '' && contains(headerValues(message, name), needle);
      }
      case 'BODY': {
        const needle = this.text();
        return ({ message }) => contains(splitMessage(message.raw).text, needle);
      }
      case 'TEXT': {
        const needle = this.text();
        return ({ message }) => contains(message.raw, needle);
      }
    }
    const ranges = parseSequenceSet(key);
    if (!ranges) {
      throw new SearchSyntaxError(`Unsupported SEARCH key ${key}`);
    }
    return ({ seq }, scope) => inSequenceSet(ranges, seq, scope.exists);
  }
}

export const search: CommandSpec = {
  states: SELECTED,
  uid: true,
  run(ctx, { uid, args }) {
    const view = ctx.selected;
    if (!view) {
      return bad('No mailbox selected');
    }
    // Every text is compared as UTF-8, so the charset needs no handling
    const criteria = argText(args[0])?.toUpperCase() === 'CHARSET' ? args.slice(2) : args;
    if (!criteria.length) {
      return bad('SEARCH expects criteria');
    }
    let matcher: Matcher;
    try {
      matcher = new CriteriaParser(criteria).parseAll();
    } catch (err) {
      if (err instanceof SearchSyntaxError) {
        return bad(err.message);
      }
      throw err;
    }
    const entries = view.entries();
    const scope: SearchScope = {
      exists: entries.length,
      largestUid: entries.reduce((max, entry) => Math.max(max, entry.message.uid), 0),
    };
    const found = entries.filter((entry) => matcher(entry, scope));
    const numbers = found.map((entry) => (uid ? entry.message.uid : entry.seq));
    ctx.untagged(['SEARCH', ...numbers].join(' '));
    return ok('SEARCH completed');
  },
};
