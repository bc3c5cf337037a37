/**
 * Server-sent events from the engine with the bearer token. The browser's EventSource cannot send
 * an Authorization header (and the token never goes into a URL), so the stream is read with
 * fetch and parsed as the HTML standard's "event stream interpretation" says: lines of
 * `field: value`, an event ending at a blank line, comments starting with `:`, `id` kept for the
 * reconnect's `Last-Event-ID`, `retry` setting the reconnect delay.
 */
import { token } from './api.js';

/** [3000] ms before a reconnect, until the stream's `retry:` says otherwise. */
const DEFAULT_RETRY_MS = 3000;

/**
 * Opens `apiPath` (under /api/v1) as an event stream; `onEvent({ type, data, id })` per event,
 * `onState('open' | 'reconnecting' | 'closed', detail?)` as the connection changes. Reconnects
 * with the last id until `close()` (the page left) or a 401/403/404 (nothing to wait for).
 */
export function openEventStream(apiPath, { onEvent, onState = () => undefined }) {
  const abort = new AbortController();
  let lastId = null;
  let retryMs = DEFAULT_RETRY_MS;
  let timer = null;

  async function connect() {
    const headers = { authorization: `Bearer ${token() ?? ''}`, accept: 'text/event-stream' };
    if (lastId !== null) headers['last-event-id'] = lastId;
    let res;
    try {
      res = await fetch(`/api/v1${apiPath}`, { headers, cache: 'no-store', signal: abort.signal });
    } catch {
      return again();
    }
    if (!res.ok || !res.body) {
      if ([401, 403, 404].includes(res.status)) return onState('closed', res.status);
      return again();
    }
    onState('open');
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let event = { type: 'message', data: [], id: null };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop() ?? '';
        for (const line of lines) {
          if (line === '') {
            if (event.id !== null) lastId = event.id;
            if (event.data.length > 0) onEvent({ type: event.type, data: event.data.join('\n'), id: lastId });
            event = { type: 'message', data: [], id: null };
            continue;
          }
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          const fieldValue = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event.type = fieldValue;
          else if (field === 'data') event.data.push(fieldValue);
          else if (field === 'id' && !fieldValue.includes('\0')) event.id = fieldValue;
          else if (field === 'retry' && /^\d+$/.test(fieldValue)) retryMs = Number(fieldValue);
        }
      }
    } catch {
      // aborted (the page was left) or the connection broke: reconnect unless closed
    }
    return again();
  }

  function again() {
    if (abort.signal.aborted) return;
    onState('reconnecting');
    timer = setTimeout(() => void connect(), retryMs);
  }

  void connect();
  return {
    close() {
      abort.abort();
      clearTimeout(timer);
    },
  };
}
