/**
 * Worker thread entry of `ParsePool`: parses messages (one, or a batch of small ones) and extracts
 * attachments, one request at a time, off the main event loop. Started only by `parse-pool.ts`; importing it elsewhere throws.
 */
import { parentPort, type MessagePort, type TransferListItem } from 'node:worker_threads';
import {
  ParseFailedError,
  errorText,
  extractAttachment,
  parseMessage,
  type ParseResult,
  type WorkerRequest,
  type WorkerResponse,
} from './parse.js';

if (parentPort === null) throw new Error('parse-worker.ts runs only as a worker thread of ParsePool');
const port: MessagePort = parentPort;

port.on('message', (request: WorkerRequest) => {
  void handle(request).then(({ response, transfer }) => port.postMessage(response, transfer));
});
port.postMessage({ type: 'ready' } satisfies WorkerResponse);

async function handle(request: WorkerRequest): Promise<{ response: WorkerResponse; transfer: TransferListItem[] }> {
  const raw = Buffer.from(request.raw);
  if (request.kind === 'parse-batch') {
    const results: ParseResult[] = [];
    let offset = 0;
    for (const length of request.lengths) {
      results.push(await parseMessage(raw.subarray(offset, offset + length), request.limits));
      offset += length;
    }
    return { response: { type: 'parsed-batch', id: request.id, results }, transfer: [] };
  }
  if (request.kind === 'parse') {
    return {
      response: { type: 'parsed', id: request.id, result: await parseMessage(raw, request.limits) },
      transfer: [],
    };
  }
  try {
    const attachment = await extractAttachment(raw, request.index, request.limits);
    if (attachment === null) return { response: { type: 'extracted', id: request.id, attachment: null }, transfer: [] };
    const content = ownedBytes(attachment.content);
    return {
      response: { type: 'extracted', id: request.id, attachment: { ...attachment, content } },
      transfer: [content.buffer as ArrayBuffer],
    };
  } catch (err) {
    const failure =
      err instanceof ParseFailedError
        ? { ok: false as const, reason: err.reason, detail: err.detail }
        : { ok: false as const, reason: 'parse-error' as const, detail: errorText(err) };
    return { response: { type: 'failed', id: request.id, failure }, transfer: [] };
  }
}

/** The bytes in an ArrayBuffer of their own, so it can be transferred without copying the rest. */
function ownedBytes(content: Buffer): Uint8Array {
  if (
    content.byteOffset === 0 &&
    content.byteLength === content.buffer.byteLength &&
    content.buffer instanceof ArrayBuffer
  ) {
    return new Uint8Array(content.buffer, 0, content.byteLength);
  }
  return new Uint8Array(content);
}
