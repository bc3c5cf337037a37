/** Opening and closing the selected mailbox: SELECT, EXAMINE, CLOSE, UNSELECT and CHECK. */
import { MailboxView } from '../mailbox-view.js';
import { argText } from '../parser.js';
import { mailboxName } from '../response.js';
import { AUTHENTICATED, bad, no, ok, SELECTED, type CommandSpec } from './context.js';

/** The system flags every mailbox supports. */
export const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

function opening(readOnly: boolean): CommandSpec {
  const verb = readOnly ? 'EXAMINE' : 'SELECT';
  return {
    states: AUTHENTICATED,
    run(ctx, { args }) {
      const name = argText(args[0]);
      if (name === undefined || !ctx.user) {
        return bad(`${verb} expects a mailbox name`);
      }
      // A failed SELECT leaves no mailbox selected (RFC 3501 section 6.3.1)
      ctx.deselect();
      const mailbox = ctx.store.findMailbox(ctx.user, name);
      if (!mailbox) {
        return no(`Mailbox ${mailboxName(name)} does not exist`, 'NONEXISTENT');
      }
      const view = new MailboxView(mailbox, readOnly);
      const recent = mailbox.messages.filter((message) => message.recent).length;
      if (!readOnly) {
        mailbox.messages.forEach((message) => (message.recent = false));
      }
      const firstUnseen = view.entries().find((entry) => !entry.message.flags.has('\\Seen'));
      ctx.untagged(`FLAGS (${SYSTEM_FLAGS.join(' ')})`);
      ctx.untagged(`OK [PERMANENTFLAGS (${readOnly ? '' : `${SYSTEM_FLAGS.join(' ')} \\*`})] Flags permitted`);
      ctx.untagged(`${view.exists} EXISTS`);
      ctx.untagged(`${recent} RECENT`);
      if (firstUnseen) {
        ctx.untagged(`OK [UNSEEN ${firstUnseen.seq}] First unseen message`);
      }
      ctx.untagged(`OK [UIDVALIDITY ${mailbox.uidValidity}] UIDs valid`);
      ctx.untagged(`OK [UIDNEXT ${mailbox.uidNext}] Predicted next UID`);
      ctx.select(view);
      return ok(`${verb} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
    },
  };
}

export const select = opening(false);
export const examine = opening(true);

/** Leaves the mailbox, silently removing its \Deleted messages unless it was opened read-only. */
export const close: CommandSpec = {
  states: SELECTED,
  run(ctx) {
    const view = ctx.selected;
    ctx.deselect();
    if (view && !view.readOnly && ctx.user) {
      const deleted = new Set(view.mailbox.messages.filter((message) => message.flags.has('\\Deleted')));
      if (deleted.size) {
        ctx.store.remove(view.mailbox, deleted);
        ctx.store.changed(ctx.user, view.mailbox);
      }
    }
    return ok('CLOSE completed');
  },
};

export const unselect: CommandSpec = {
  states: SELECTED,
  run(ctx) {
    ctx.deselect();
    return ok('UNSELECT completed');
  },
};

export const check: CommandSpec = {
  states: SELECTED,
  run: () => ok('CHECK completed'),
};
