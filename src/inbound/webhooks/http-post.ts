/** The outcome of one POST: an HTTP answer (any status) or no answer at all. */
export type PostOutcome = { status: number; bodySnippet: string } | { status: null; error: string };

/** Posts a body; injectable so the dispatcher can be tested without sockets. */
export type WebhookPoster = (
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
) => Promise<PostOutcome>;

const SNIPPET_CHARS = 200;

function describeError(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timed out';
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (cause && typeof cause.code === 'string') return `connection failed (${cause.code})`;
  if (cause && typeof cause.message === 'string') return `connection failed (${cause.message})`;
  return err instanceof Error ? err.message : String(err);
}

/** POST with Node's fetch. Redirects are not followed (a 3xx is a failure the administrator should fix). */
export const fetchPoster: WebhookPoster = async (url, headers, body, timeoutMs) => {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text().catch(() => '');
    return { status: res.status, bodySnippet: text.slice(0, SNIPPET_CHARS) };
  } catch (err) {
    return { status: null, error: describeError(err) };
  }
};
