/**
 * Tokenizer for one client command frame (see framer.ts): a tag, a command name and its
 * arguments. Arguments are atoms (including flags, sequence sets and fetch items such as
 * `BODY.PEEK[HEADER.FIELDS (FROM)]<0.100>`), strings (quoted or literal) and parenthesised lists.
 */

export type ImapArg =
  { kind: 'atom'; value: string } | { kind: 'string'; value: Buffer } | { kind: 'list'; items: ImapArg[] };

export interface ParsedCommand {
  tag: string;
  /** Upper-cased command name without the UID prefix, e.g. `FETCH`. */
  name: string;
  /** True for `UID FETCH`, `UID STORE` and the other UID forms. */
  uid: boolean;
  args: ImapArg[];
}

/** The frame could not be read as a command; `tag` is set when the tag itself was readable. */
export class CommandSyntaxError extends Error {
  constructor(
    message: string,
    readonly tag?: string,
  ) {
    super(message);
    this.name = 'CommandSyntaxError';
  }
}

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_PAREN = 0x28;
const CLOSE_PAREN = 0x29;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;

class Tokenizer {
  private pos = 0;

  constructor(private readonly input: Buffer) {}

  atEnd(): boolean {
    return this.pos >= this.input.length || this.input[this.pos] === CR || this.input[this.pos] === LF;
  }

  skipSpaces(): void {
    while (this.input[this.pos] === SP) {
      this.pos++;
    }
  }

  readArgs(closing?: number): ImapArg[] {
    const items: ImapArg[] = [];
    for (;;) {
      this.skipSpaces();
      if (this.atEnd()) {
        if (closing !== undefined) {
          throw new CommandSyntaxError('Unterminated list');
        }
        return items;
      }
      if (closing !== undefined && this.input[this.pos] === closing) {
        this.pos++;
        return items;
      }
      items.push(this.readArg());
    }
  }

  private readArg(): ImapArg {
    const byte = this.input[this.pos];
    if (byte === OPEN_PAREN) {
      this.pos++;
      return { kind: 'list', items: this.readArgs(CLOSE_PAREN) };
    }
    if (byte === QUOTE) {
      return { kind: 'string', value: this.readQuoted() };
    }
    if (byte === OPEN_BRACE) {
      return { kind: 'string', value: this.readLiteral() };
    }
    return { kind: 'atom', value: this.readAtom() };
  }

  private readQuoted(): Buffer {
    const bytes: number[] = [];
    this.pos++;
    while (this.pos < this.input.length) {
      const byte = this.input[this.pos++];
      if (byte === QUOTE) {
        return Buffer.from(bytes);
      }
      if (byte === CR || byte === LF || byte === undefined) {
        break;
      }
      if (byte === BACKSLASH) {
        const escaped = this.input[this.pos++];
        if (escaped !== QUOTE && escaped !== BACKSLASH) {
          throw new CommandSyntaxError('Invalid escape in quoted string');
        }
        bytes.push(escaped);
        continue;
      }
      bytes.push(byte);
    }
    throw new CommandSyntaxError('Unterminated quoted string');
  }

  private readLiteral(): Buffer {
    const header = /^\{(\d+)\+?\}\r?\n/.exec(this.input.subarray(this.pos, this.pos + 16).toString('latin1'));
    if (!header?.[1]) {
      throw new CommandSyntaxError('Invalid literal');
    }
    const size = Number(header[1]);
    const start = this.pos + header[0].length;
    if (start + size > this.input.length) {
      throw new CommandSyntaxError('Literal shorter than announced');
    }
    this.pos = start + size;
    return this.input.subarray(start, start + size);
  }

  /** An atom runs to the next space or parenthesis; a bracketed section may contain both. */
  private readAtom(): string {
    const start = this.pos;
    let depth = 0;
    while (this.pos < this.input.length) {
      const byte = this.input[this.pos];
      if (byte === CR || byte === LF) {
        break;
      }
      if (depth === 0 && (byte === SP || byte === OPEN_PAREN || byte === CLOSE_PAREN)) {
        break;
      }
      if (byte === OPEN_BRACKET) {
        depth++;
      } else if (byte === CLOSE_BRACKET && depth > 0) {
        depth--;
      }
      this.pos++;
    }
    if (depth > 0) {
      throw new CommandSyntaxError('Unterminated section');
    }
    if (this.pos === start) {
      throw new CommandSyntaxError(`Unexpected character ${String.fromCharCode(this.input[start] ?? 0)}`);
    }
    return this.input.subarray(start, this.pos).toString('utf8');
  }
}

const UID_COMMANDS = new Set(['FETCH', 'STORE', 'SEARCH', 'COPY', 'MOVE', 'EXPUNGE']);

export function parseCommand(frame: Buffer): ParsedCommand {
  const tokenizer = new Tokenizer(frame);
  let args: ImapArg[];
  try {
    args = tokenizer.readArgs();
  } catch (err) {
    const tag = /^([^\s(){"*%\]]+) /.exec(frame.subarray(0, 64).toString('latin1'))?.[1];
    throw new CommandSyntaxError(err instanceof Error ? err.message : String(err), tag);
  }
  const [tagArg, nameArg, ...rest] = args;
  if (tagArg?.kind !== 'atom' || /[*+]/.test(tagArg.value)) {
    throw new CommandSyntaxError('Missing or invalid tag');
  }
  const tag = tagArg.value;
  if (nameArg?.kind !== 'atom') {
    throw new CommandSyntaxError('Missing command', tag);
  }
  let name = nameArg.value.toUpperCase();
  if (name !== 'UID') {
    return { tag, name, uid: false, args: rest };
  }
  const [subArg, ...subArgs] = rest;
  name = subArg?.kind === 'atom' ? subArg.value.toUpperCase() : '';
  if (!UID_COMMANDS.has(name)) {
    throw new CommandSyntaxError('Unknown UID command', tag);
  }
  return { tag, name, uid: true, args: subArgs };
}

/** The text of an atom or a string argument; undefined for a list or a missing argument. */
export function argText(arg: ImapArg | undefined): string | undefined {
  if (!arg || arg.kind === 'list') {
    return undefined;
  }
  return arg.kind === 'atom' ? arg.value : arg.value.toString('utf8');
}

/** The items of a list argument, or the argument itself as a one-item list. */
export function argItems(arg: ImapArg | undefined): ImapArg[] {
  if (!arg) {
    return [];
  }
  return arg.kind === 'list' ? arg.items : [arg];
}
