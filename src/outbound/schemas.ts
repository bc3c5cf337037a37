import { Type, type Static } from '@sinclair/typebox';

const Email = Type.String({ format: 'mail-address', maxLength: 320 });
const Recipients = Type.Array(Email, { maxItems: 100 });

export const SendInput = Type.Object(
  {
    to: Type.Optional(Recipients),
    cc: Type.Optional(Recipients),
    bcc: Type.Optional(Recipients),
    subject: Type.Optional(Type.String({ maxLength: 998 })),
    text: Type.Optional(Type.String({ maxLength: 5_000_000 })),
    html: Type.Optional(Type.String({ maxLength: 10_000_000 })),
    attachments: Type.Optional(
      Type.Array(
        Type.Object(
          {
            filename: Type.String({ minLength: 1, maxLength: 255 }),
            contentType: Type.String({ minLength: 3, maxLength: 255, pattern: '^[\\w.+-]+/[\\w.+-]+$' }),
            contentBase64: Type.String({ pattern: '^[A-Za-z0-9+/=\\s]*$' }),
          },
          { additionalProperties: false },
        ),
        { maxItems: 50 },
      ),
    ),
    /** An inbound message id: In-Reply-To/References, "Re: " subject, the customer as recipient, its conversation. */
    inReplyTo: Type.Optional(Type.String({ format: 'uuid' })),
    /** A response file entry, filled in with the message's and agent's values. */
    response: Type.Optional(
      Type.Object(
        {
          file: Type.String({ minLength: 1 }),
          name: Type.String({ minLength: 1 }),
          /** The groups around the response, outermost first: needed when its name is used in several groups. */
          group: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 500 }), { maxItems: 100 })),
        },
        { additionalProperties: false },
      ),
    ),
    agent: Type.Optional(
      Type.Object(
        {
          name: Type.String({ minLength: 1, maxLength: 200 }),
          firstName: Type.Optional(Type.String({ maxLength: 200 })),
          lastName: Type.Optional(Type.String({ maxLength: 200 })),
          chatName: Type.Optional(Type.String({ maxLength: 200 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type SendInput = Static<typeof SendInput>;

/** A recipient the server refused for good while it took the message for the others. */
export const RefusedRecipientView = Type.Object({
  address: Type.String(),
  /** The server's reply to RCPT TO. */
  reply: Type.String(),
  responseCode: Type.Union([Type.Integer(), Type.Null()]),
  at: Type.String(),
});

/**
 * What became of one recipient: `sent` (the server took it for this recipient), `refused` (for
 * good, 5xx at RCPT TO), `failed` (the message was dead-lettered while it still waited for this
 * recipient), `pending` (still to be sent to it, or cancelled before). `reply` is the server's
 * answer that decided it (null while nothing did); `at` when.
 */
export const RecipientOutcomeView = Type.Object({
  address: Type.String(),
  outcome: Type.Union([Type.Literal('sent'), Type.Literal('refused'), Type.Literal('failed'), Type.Literal('pending')]),
  reply: Type.Union([Type.String(), Type.Null()]),
  responseCode: Type.Union([Type.Integer(), Type.Null()]),
  at: Type.Union([Type.String(), Type.Null()]),
});
export type RecipientOutcomeView = Static<typeof RecipientOutcomeView>;

export const OutboundView = Type.Object({
  id: Type.String(),
  destinationId: Type.String(),
  serverId: Type.String(),
  status: Type.String(),
  messageId: Type.String(),
  conversationId: Type.Union([Type.String(), Type.Null()]),
  subject: Type.String(),
  recipients: Type.Array(Type.String()),
  attempts: Type.Integer(),
  lastReply: Type.Union([Type.String(), Type.Null()]),
  lastResponseCode: Type.Union([Type.Integer(), Type.Null()]),
  nextAttemptAt: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  sentAt: Type.Union([Type.String(), Type.Null()]),
  /**
   * Recipients refused for good (5xx) while the message went to the others; with any, a sent
   * message's status is `partially-sent`.
   */
  refusedRecipients: Type.Array(RefusedRecipientView),
  /** Every recipient and what became of it (a partly sent message's are not all alike). */
  recipientOutcomes: Type.Array(RecipientOutcomeView),
  /**
   * Why a message that is not sent yet waits, as the instance answering sees it: `retry` (its
   * own next attempt, after a 4xx or a lost connection), `rate-limit` (the account's hourly limit
   * is reached), `relay` (the relay is unreachable and probed) or `credentials` (the login was
   * refused: held); null when it just waits its turn, is done, or its queue is on another instance.
   */
  waitingFor: Type.Union([
    Type.Literal('retry'),
    Type.Literal('rate-limit'),
    Type.Literal('relay'),
    Type.Literal('credentials'),
    Type.Null(),
  ]),
  /**
   * Not before this time: the retry time, the moment the hourly window frees its next place
   * (messages ahead in the queue take the first places), or the next probe or login attempt.
   */
  waitingUntil: Type.Union([Type.String(), Type.Null()]),
});
export type OutboundView = Static<typeof OutboundView>;

export const DeadLetterView = Type.Object({
  id: Type.String(),
  serverId: Type.String(),
  destinationId: Type.String(),
  subject: Type.String(),
  recipients: Type.Array(Type.String()),
  reply: Type.Union([Type.String(), Type.Null()]),
  responseCode: Type.Union([Type.Integer(), Type.Null()]),
  attempts: Type.Integer(),
  failedAt: Type.Union([Type.String(), Type.Null()]),
  /** The instance whose spool holds the file (it carries out re-queues and deletions). */
  instanceId: Type.String(),
  /** Recipients refused for good before (the others of these got the message): not sent again on a re-queue. */
  refusedRecipients: Type.Array(RefusedRecipientView),
  /**
   * Every recipient the message was sent to and what became of each: those the server took it
   * for at an earlier attempt (`sent`), refused for good (`refused`), and those the dead letter is
   * for (`failed`, with the reply that dead-lettered it; a re-queue sends it to them alone).
   */
  recipientOutcomes: Type.Array(RecipientOutcomeView),
});
export type DeadLetterView = Static<typeof DeadLetterView>;

/** An action left for the instance whose spool holds the message (202). */
export const RequestedView = Type.Object({
  id: Type.String(),
  state: Type.Literal('requested'),
  action: Type.String(),
  requestId: Type.String(),
  instanceId: Type.String(),
  /** Whether that instance runs now (it carries the request out within seconds); else at its next start. */
  holderRunning: Type.Boolean(),
});
export type RequestedView = Static<typeof RequestedView>;

/** A request left for another instance, and what became of it. */
export const RequestView = Type.Object({
  requestId: Type.String(),
  /** The outgoing message. */
  id: Type.String(),
  /** Its e-mail server and subject. */
  serverId: Type.String(),
  subject: Type.String(),
  action: Type.String(),
  instanceId: Type.String(),
  /** Whether that instance runs now (a waiting request is carried out within seconds); else at its next start. */
  holderRunning: Type.Boolean(),
  /**
   * `requested` (waiting for that instance; can be withdrawn), `in-progress` (that instance carries
   * it out now), `done`, `refused` (`outcome` says why) or `withdrawn`.
   */
  state: Type.Union([
    Type.Literal('requested'),
    Type.Literal('in-progress'),
    Type.Literal('done'),
    Type.Literal('refused'),
    Type.Literal('withdrawn'),
  ]),
  outcome: Type.Union([Type.String(), Type.Null()]),
  requestedAt: Type.String(),
  doneAt: Type.Union([Type.String(), Type.Null()]),
});
export type RequestView = Static<typeof RequestView>;

/** An instance retired: what was given up with its spool. */
export const RetiredView = Type.Object({
  instanceId: Type.String(),
  retiredAt: Type.String(),
  /** Its messages still waiting to be sent, now failed. */
  failedMessages: Type.Integer(),
  /** Its dead letters, no longer listed (their files were on its disk). */
  unlistedDeadLetters: Type.Integer(),
  /** Requests that were waiting for it, now withdrawn. */
  withdrawnRequests: Type.Integer(),
});
export type RetiredView = Static<typeof RetiredView>;
