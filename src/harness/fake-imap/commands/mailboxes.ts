/** Mailbox management: LIST, LSUB, NAMESPACE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE and STATUS. */
import { argItems, argText } from '../parser.js';
import { mailboxName } from '../response.js';
import { DELIMITER, type Mailbox, type UserAccount } from '../store.js';
import { AUTHENTICATED, bad, no, ok, type CommandContext, type CommandSpec } from './context.js';

/** Turns a LIST pattern into a regular expression: `*` matches anything, `%` stops at the delimiter. */
function patternToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\/]/g, (char) => `\\${char}`);
  const body = escaped.replace(/\*/g, '.*').replace(/%/g, `[^${DELIMITER}]*`);
  return new RegExp(`^${body}$`, /^inbox$/i.test(pattern) ? 'i' : '');
}

function listAttributes(user: UserAccount, mailbox: Mailbox): string {
  const prefix = `${mailbox.name}${DELIMITER}`;
  const hasChildren = [...user.mailboxes.keys()].some((name) => name.startsWith(prefix));
  const attributes = [hasChildren ? '\\HasChildren' : '\\HasNoChildren'];
  if (mailbox.specialUse) {
    attributes.push(mailbox.specialUse);
  }
  return `(${attributes.join(' ')})`;
}

function listing(kind: 'LIST' | 'LSUB'): CommandSpec {
  return {
    states: AUTHENTICATED,
    run(ctx, { args }) {
      // LIST-EXTENDED selection options are not advertised; a leading list is ignored
      const rest = args[0]?.kind === 'list' ? args.slice(1) : args;
      const reference = argText(rest[0]);
      const pattern = argText(rest[1]);
      const user = ctx.user;
      if (reference === undefined || pattern === undefined || !user) {
        return bad(`${kind} expects a reference and a mailbox pattern`);
      }
      if (pattern === '') {
        ctx.untagged(`${kind} (\\Noselect) "${DELIMITER}" ""`);
        return ok(`${kind} completed`);
      }
      const matcher = patternToRegExp(reference + pattern);
      for (const mailbox of user.mailboxes.values()) {
        if (matcher.test(mailbox.name) && (kind === 'LIST' || mailbox.subscribed)) {
          ctx.untagged(`${kind} ${listAttributes(user, mailbox)} "${DELIMITER}" ${mailboxName(mailbox.name)}`);
        }
      }
      return ok(`${kind} completed`);
    },
  };
}

export const list = listing('LIST');
export const lsub = listing('LSUB');

export const namespace: CommandSpec = {
  states: AUTHENTICATED,
  run(ctx) {
    ctx.untagged(`NAMESPACE (("" "${DELIMITER}")) NIL NIL`);
    return ok('NAMESPACE completed');
  },
};

/** Runs a store operation on a named mailbox, turning the store's refusal into a NO. */
function mailboxOperation(
  verb: string,
  operation: (ctx: CommandContext, user: UserAccount, name: string, other: string | undefined) => void,
): CommandSpec {
  return {
    states: AUTHENTICATED,
    run(ctx, { args }) {
      const name = argText(args[0]);
      if (name === undefined || !ctx.user) {
        return bad(`${verb} expects a mailbox name`);
      }
      try {
        operation(ctx, ctx.user, name, argText(args[1]));
      } catch (err) {
        return no(err instanceof Error ? err.message : String(err));
      }
      return ok(`${verb} completed`);
    },
  };
}

export const create: CommandSpec = {
  states: AUTHENTICATED,
  run(ctx, { args }) {
    const name = argText(args[0])?.replace(/\/$/, '');
    if (!name || !ctx.user) {
      return bad('CREATE expects a mailbox name');
    }
    if (ctx.store.findMailbox(ctx.user, name)) {
      return no('Mailbox already exists', 'ALREADYEXISTS');
    }
    try {
      ctx.store.createMailbox(ctx.user, name);
    } catch (err) {
      return no(err instanceof Error ? err.message : String(err), 'CANNOT');
    }
    return ok('CREATE completed');
  },
};

export const remove: CommandSpec = mailboxOperation('DELETE', (ctx, user, name) => {
  if (ctx.selected && ctx.store.findMailbox(user, name) === ctx.selected.mailbox) {
    ctx.deselect();
  }
  ctx.store.deleteMailbox(user, name);
});

export const rename: CommandSpec = mailboxOperation('RENAME', (ctx, user, name, newName) => {
  if (!newName) {
    throw new Error('RENAME expects a new name');
  }
  ctx.store.renameMailbox(user, name, newName);
});

export const subscribe: CommandSpec = mailboxOperation('SUBSCRIBE', (ctx, user, name) => {
  ctx.store.mailbox(user, name).subscribed = true;
});

export const unsubscribe: CommandSpec = mailboxOperation('UNSUBSCRIBE', (ctx, user, name) => {
  ctx.store.mailbox(user, name).subscribed = false;
});

const STATUS_ITEMS: Record<string, (mailbox: Mailbox) => number> = {
  MESSAGES: (mailbox) => mailbox.messages.length,
  RECENT: (mailbox) => mailbox.messages.filter((message) => message.recent).length,
  UIDNEXT: (mailbox) => mailbox.uidNext,
  UIDVALIDITY: (mailbox) => mailbox.uidValidity,
  UNSEEN: (mailbox) => mailbox.messages.filter((message) => !message.flags.has('\\Seen')).length,
  SIZE: (mailbox) => mailbox.messages.reduce((sum, message) => sum + message.raw.length, 0),
};

export const status: CommandSpec = {
  states: AUTHENTICATED,
  run(ctx, { args }) {
    const name = argText(args[0]);
    const items = argItems(args[1]).map((item) => argText(item)?.toUpperCase() ?? '');
    if (name === undefined || args[1]?.kind !== 'list' || !ctx.user) {
      return bad('STATUS expects a mailbox name and a list of items');
    }
    const unknown = items.find((item) => !STATUS_ITEMS[item]);
    if (unknown !== undefined) {
      return bad(`Unsupported STATUS item ${unknown}`);
    }
    const mailbox = ctx.store.findMailbox(ctx.user, name);
    if (!mailbox) {
      return no('Mailbox does not exist', 'NONEXISTENT');
    }
    const values = items.map((item) => `${item} ${STATUS_ITEMS[item]?.(mailbox) ?? 0}`);
    ctx.untagged(`STATUS ${mailboxName(mailbox.name)} (${values.join(' ')})`);
    return ok('STATUS completed');
  },
};
