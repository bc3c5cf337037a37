/**
 * The fake server's mail: users, their mailboxes and the messages in them, all in memory.
 * Sessions read it through mailbox views (mailbox-view.ts) and hear about every change through
 * `onChange`, which is how an idling session learns of a message appended elsewhere.
 */

/** Mailbox hierarchy delimiter. */
export const DELIMITER = '/';

export interface StoredMessage {
  uid: number;
  flags: Set<string>;
  internalDate: Date;
  raw: Buffer;
  /** Not yet reported as \Recent to a session that selected the mailbox read-write. */
  recent: boolean;
  /** Gmail mode: the message's X-GM-MSGID, the same in every folder (label) it is in. */
  gmMsgId?: string;
}

export interface Mailbox {
  /** The name as created; INBOX is always spelled INBOX. */
  name: string;
  uidValidity: number;
  uidNext: number;
  messages: StoredMessage[];
  subscribed: boolean;
  /** RFC 6154 attribute such as `\Sent`, listed by LIST. */
  specialUse?: string;
}

export interface UserAccount {
  name: string;
  password?: string;
  accessTokens: Set<string>;
  mailboxes: Map<string, Mailbox>;
}

export interface AppendInput {
  flags?: readonly string[];
  date?: Date;
  /** Gmail mode: this message is already in the mailbox (another label): keep its X-GM-MSGID. */
  gmMsgId?: string;
}

/**
 * Gmail's folder of every message, listed with the RFC 6154 attribute `\All`
 * (https://developers.google.com/gmail/imap/imap-extensions, "Special-Use Extension of the LIST command").
 */
export const GMAIL_ALL_MAIL = '[Gmail]/All Mail';

export type ChangeListener = (user: UserAccount, mailbox: Mailbox) => void;

/** INBOX is case-insensitive (RFC 3501 section 5.1); every other name is kept as given. */
export function mailboxKey(name: string): string {
  return name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
}

export class MailStore {
  private readonly users = new Map<string, UserAccount>();
  /** Gmail mode: the last X-GM-MSGID given (a 64-bit number, as Gmail's are). */
  private lastGmMsgId = 1278455344230334865n;

  /**
   * `gmail`: behave like Gmail (https://developers.google.com/gmail/imap/imap-extensions): every user
   * has `[Gmail]/All Mail` (`\All`), each new message gets an X-GM-MSGID and is in All Mail too,
   * and a copy to another folder (a label) is the same message, with the same id.
   */
  constructor(readonly gmail = false) {}
  private readonly listeners = new Set<ChangeListener>();
  /** Seconds since the epoch at start, then counting up: every new UIDVALIDITY is larger. */
  private lastUidValidity = Math.floor(Date.now() / 1000);

  addUser(name: string, credentials: { password?: string; accessTokens?: readonly string[] }): UserAccount {
    if (this.users.has(name)) {
      throw new Error(`Fake IMAP user ${name} already exists`);
    }
    const user: UserAccount = {
      name,
      password: credentials.password,
      accessTokens: new Set(credentials.accessTokens ?? []),
      mailboxes: new Map(),
    };
    this.users.set(name, user);
    this.createMailbox(user, 'INBOX');
    if (this.gmail) this.createMailbox(user, GMAIL_ALL_MAIL, '\\All');
    return user;
  }

  findUser(name: string): UserAccount | undefined {
    return this.users.get(name);
  }

  user(name: string): UserAccount {
    const user = this.users.get(name);
    if (!user) {
      throw new Error(`Fake IMAP user ${name} does not exist`);
    }
    return user;
  }

  findMailbox(user: UserAccount, name: string): Mailbox | undefined {
    return user.mailboxes.get(mailboxKey(name));
  }

  mailbox(user: UserAccount, name: string): Mailbox {
    const mailbox = this.findMailbox(user, name);
    if (!mailbox) {
      throw new Error(`Fake IMAP mailbox ${name} of ${user.name} does not exist`);
    }
    return mailbox;
  }

  createMailbox(user: UserAccount, name: string, specialUse?: string): Mailbox {
    const key = mailboxKey(name);
    if (!key || key.startsWith(DELIMITER) || key.endsWith(DELIMITER)) {
      throw new Error(`Invalid mailbox name ${JSON.stringify(name)}`);
    }
    if (user.mailboxes.has(key)) {
      throw new Error(`Fake IMAP mailbox ${name} of ${user.name} already exists`);
    }
    const mailbox: Mailbox = {
      name: key,
      uidValidity: this.nextUidValidity(),
      uidNext: 1,
      messages: [],
      subscribed: true,
      specialUse,
    };
    user.mailboxes.set(key, mailbox);
    return mailbox;
  }

  deleteMailbox(user: UserAccount, name: string): void {
    const mailbox = this.mailbox(user, name);
    if (mailbox.name === 'INBOX') {
      throw new Error('INBOX can not be deleted');
    }
    user.mailboxes.delete(mailbox.name);
    mailbox.messages = [];
    this.changed(user, mailbox);
  }

  renameMailbox(user: UserAccount, from: string, to: string): void {
    const mailbox = this.mailbox(user, from);
    const key = mailboxKey(to);
    if (mailbox.name === 'INBOX' || key === 'INBOX') {
      throw new Error('INBOX can not be renamed');
    }
    if (user.mailboxes.has(key)) {
      throw new Error(`Fake IMAP mailbox ${to} of ${user.name} already exists`);
    }
    user.mailboxes.delete(mailbox.name);
    mailbox.name = key;
    user.mailboxes.set(key, mailbox);
  }

  append(user: UserAccount, mailbox: Mailbox, raw: Buffer, input: AppendInput = {}): StoredMessage {
    const message: StoredMessage = {
      uid: mailbox.uidNext++,
      flags: new Set((input.flags ?? []).filter((flag) => flag.toLowerCase() !== '\\recent')),
      internalDate: input.date ?? new Date(),
      raw,
      recent: true,
    };
    if (this.gmail) {
      // A new message lands in All Mail as well; a copy (a label added) already is there.
      message.gmMsgId = input.gmMsgId ?? String(++this.lastGmMsgId);
      const all = this.findMailbox(user, GMAIL_ALL_MAIL);
      if (input.gmMsgId === undefined && all && all !== mailbox)
        this.append(user, all, raw, { ...input, gmMsgId: message.gmMsgId });
    }
    mailbox.messages.push(message);
    this.changed(user, mailbox);
    return message;
  }

  /** Removes the given messages; the caller reports the change with `changed`. */
  remove(mailbox: Mailbox, messages: ReadonlySet<StoredMessage>): void {
    mailbox.messages = mailbox.messages.filter((message) => !messages.has(message));
  }

  /**
   * Gives the mailbox a new, larger UIDVALIDITY and numbers its messages again from 1, the way a
   * server does after its index was rebuilt. The messages become new objects, so a session that
   * still has the old view sees them expunged and the renumbered ones arrive.
   */
  resetUidValidity(user: UserAccount, mailbox: Mailbox): number {
    mailbox.uidValidity = this.nextUidValidity();
    mailbox.messages = mailbox.messages.map((message, index) => ({
      ...message,
      uid: index + 1,
      flags: new Set(message.flags),
    }));
    mailbox.uidNext = mailbox.messages.length + 1;
    this.changed(user, mailbox);
    return mailbox.uidValidity;
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(user: UserAccount, mailbox: Mailbox): void {
    for (const listener of this.listeners) {
      listener(user, mailbox);
    }
  }

  private nextUidValidity(): number {
    this.lastUidValidity += 1;
    return this.lastUidValidity;
  }
}
