import { SrcError } from './src-path.js';

/**
 * Fetches a remote (http/https) Src when remote sources are enabled. Bounded in time and size;
 * redirects are followed only to http/https (fetch's own rule).
 * @param timeoutMs give up after this many milliseconds
 * @param maxBytes largest body accepted
 */
export async function fetchRemote(url: URL, timeoutMs: number, maxBytes: number): Promise<Buffer> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SrcError(`${url.protocol} URLs are refused`);
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new SrcError(`fetching ${url.href} failed: ${(err as Error).message}`);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new SrcError(`fetching ${url.href} answered HTTP ${response.status}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Uint8Array).byteLength;
    if (size > maxBytes) {
      await response.body.cancel().catch(() => undefined);
      throw new SrcError(`${url.href} is larger than ${maxBytes} bytes`);
    }
    chunks.push(Buffer.from(chunk as Uint8Array));
  }
  return Buffer.concat(chunks);
}
