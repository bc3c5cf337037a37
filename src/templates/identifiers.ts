/**
 * The replaceable identifiers of the reference ("Replaceable identifiers in response files"),
 * each computed from a render context. Pure: no I/O, the clock comes in as `now`.
 */

export interface AgentInfo {
  name: string;
  firstName?: string;
  lastName?: string;
  /** Chat display name; `$Agent.ChatName$` falls back to `name`. */
  chatName?: string;
}

export interface RenderContext {
  /** `$CallID$`: the incoming message's id (its contact id). */
  callId?: string;
  /** The incoming e-mail, when replying to one. */
  message?: { subject: string; fromAddress: string | null; fromName: string | null; receivedAt: Date };
  /** The destination: `$ServiceGroup…$`. */
  serviceGroup?: { name: string; address: string };
  agent?: AgentInfo;
  /** `$Customer…$`; for e-mail it defaults to the sender of the incoming message. */
  customer?: { name?: string; email?: string };
  /** `$Date$`, `$Time$`. */
  now: Date;
  /** BCP 47, e.g. `en-US`, `de-DE`: the short date and time formats come from it. */
  locale: string;
  /** IANA zone, e.g. `Europe/Berlin`. */
  timeZone: string;
}

type Style = 'date' | 'time' | 'both';
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The locale's short date, short time, or both (as `Intl` joins them), in the time zone. */
export function formatShort(date: Date, style: Style, locale: string, timeZone: string): string {
  const key = `${style}|${locale}|${timeZone}`;
  let format = formatters.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat(locale, {
      timeZone,
      ...(style !== 'time' && { dateStyle: 'short' }),
      ...(style !== 'date' && { timeStyle: 'short' }),
    });
    formatters.set(key, format);
  }
  return format.format(date);
}

/** Whether Intl knows this locale and time zone (throws RangeError otherwise). */
export function checkLocale(locale: string, timeZone: string): void {
  formatShort(new Date(0), 'both', locale, timeZone);
}

type Value = (ctx: RenderContext) => string;

const fromName: Value = (c) => c.message?.fromName || c.message?.fromAddress || '';
const fromAddress: Value = (c) => c.message?.fromAddress ?? '';
const received =
  (style: Style): Value =>
  (c) =>
    c.message ? formatShort(c.message.receivedAt, style, c.locale, c.timeZone) : '';
const agentName: Value = (c) => c.agent?.name ?? '';
const customerName: Value = (c) => c.customer?.name ?? c.message?.fromName ?? '';
const serviceGroupName: Value = (c) => c.serviceGroup?.name ?? '';

/** Identifier (as in the reference) → its value. */
export const IDENTIFIERS: Readonly<Record<string, Value>> = {
  CallID: (c) => c.callId ?? '',
  Subject: (c) => c.message?.subject ?? '',
  From: (c) => {
    const name = c.message?.fromName;
    const address = fromAddress(c);
    return name && address ? `${name} (${address})` : name || address;
  },
  'From.Name': fromName,
  'From.Address': fromAddress,
  Date: (c) => formatShort(c.now, 'date', c.locale, c.timeZone),
  Time: (c) => formatShort(c.now, 'time', c.locale, c.timeZone),
  Received: received('both'),
  'Received.Date': received('date'),
  'Received.Time': received('time'),
  ServiceGroup: serviceGroupName,
  'ServiceGroup.Name': serviceGroupName,
  'ServiceGroup.Email': (c) => c.serviceGroup?.address ?? '',
  Agent: agentName,
  'Agent.Name': agentName,
  'Agent.FirstName': (c) => c.agent?.firstName ?? '',
  'Agent.LastName': (c) => c.agent?.lastName ?? '',
  'Agent.ChatName': (c) => c.agent?.chatName || agentName(c),
  Customer: customerName,
  'Customer.Name': customerName,
  'Customer.Email': (c) => c.customer?.email ?? c.message?.fromAddress ?? '',
};

const BY_KEY = new Map(Object.entries(IDENTIFIERS).map(([name, value]) => [name.toLowerCase(), value]));

/** The value function of an identifier (names match ignoring case), or undefined when unknown. */
export function identifierValue(name: string): Value | undefined {
  return BY_KEY.get(name.toLowerCase());
}
