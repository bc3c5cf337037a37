import { asciiDomainAddress, needsSmtpUtf8 } from '../shared/mail-address.js';

/**
 * The SMTP envelope as a given server can take it (RFC 6531, SMTPUTF8). Addresses are stored
 * with Unicode domains (`shared/mail-address.ts`). A server that offers SMTPUTF8 in its EHLO reply
 * gets them as they are: nodemailer then adds `SMTPUTF8` to MAIL FROM by itself whenever the
 * envelope holds a character outside ASCII (smtp-connection `_setEnvelope`). A server without it
 * gets every domain as punycode A-labels (RFC 5890), which it takes like any other domain; a local
 * part outside ASCII has no such form, and nodemailer would send it all the same (nodemailer
 * issues #1378 and #1462: it raises no error when the server lacks SMTPUTF8), so the message is
 * refused here, before MAIL FROM, with {@link SMTPUTF8_REQUIRED}.
 */

/** The error code of a message whose addresses need SMTPUTF8 that the server does not offer (permanent). */
export const SMTPUTF8_REQUIRED = 'ESMTPUTF8';

/** Whether an EHLO reply offers SMTPUTF8 (one of its lines is the keyword, RFC 6531 §3.1). */
export function offersSmtpUtf8(ehloReply: string | false | undefined): boolean {
  return typeof ehloReply === 'string' && /^250[ -]SMTPUTF8\b/im.test(ehloReply);
}

/** The envelope to give a server (see the module comment); throws {@link SMTPUTF8_REQUIRED}. */
export function envelopeFor(
  envelope: { from: string; to: readonly string[] },
  smtpUtf8: boolean,
  host: string,
): { from: string; to: string[] } {
  if (smtpUtf8) return { from: envelope.from, to: [...envelope.to] };
  const unicode = [envelope.from, ...envelope.to].filter((address) => address !== '' && needsSmtpUtf8(address));
  if (unicode.length > 0) {
    throw Object.assign(
      new Error(
        `the SMTP server ${host} does not offer SMTPUTF8, which ${unicode.join(', ')} need${unicode.length === 1 ? 's' : ''}: ` +
          'a local part with characters outside ASCII has no ASCII form (RFC 6531); send through a server that offers SMTPUTF8, or to an ASCII address',
      ),
      { code: SMTPUTF8_REQUIRED, addresses: unicode },
    );
  }
  return {
    from: envelope.from === '' ? '' : asciiDomainAddress(envelope.from),
    to: envelope.to.map(asciiDomainAddress),
  };
}
