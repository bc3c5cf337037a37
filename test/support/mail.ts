/** Builders of raw RFC 822 messages for tests. */

let counter = 0;

export interface MailSpec {
  from?: string;
  to?: string;
  cc?: string;
  subject?: string;
  body?: string;
  messageId?: string | null;
  headers?: Record<string, string>;
  inReplyTo?: string;
}

export function rawMail(spec: MailSpec = {}): string {
  counter += 1;
  const lines = [
    `From: ${spec.from ?? 'Customer <customer@example.net>'}`,
    `To: ${spec.to ?? 'support@example.com'}`,
    ...(spec.cc ? [`Cc: ${spec.cc}`] : []),
    `Subject: ${spec.subject ?? `Question ${counter}`}`,
    `Date: ${new Date().toUTCString()}`,
    ...(spec.messageId === null
      ? []
      : [`Message-ID: <${spec.messageId ?? `m${counter}.${process.pid}.${Date.now()}@example.net`}>`]),
    ...(spec.inReplyTo ? [`In-Reply-To: <${spec.inReplyTo}>`] : []),
    ...Object.entries(spec.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    spec.body ?? `Hello, this is message ${counter}.`,
    '',
  ];
  return lines.join('\r\n');
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
}
