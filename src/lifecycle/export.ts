import { constants } from 'node:fs';
import { mkdir, open, readdir, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { mapLimited } from '../shared/map-limited.js';
import type { ExportCursor, ExportedMessage, ExportedOutbound } from '../store/export-reads.js';
import type { Store } from '../store/store.js';

/** [200] rows read per page (a keyset page along the tenant's age index). */
const PAGE = 200;
/** [8] sources read from their backend at once (an object store answers in parallel). */
const READ_CONCURRENCY = 8;
/** [0o600] files of an export: they hold personal data, for the operator's user alone. */
const FILE_MODE = 0o600;
/** [0o700] its folders, likewise. */
const DIR_MODE = 0o700;

export interface ExportRequest {
  tenantId: string;
  /** The folder to write to: it must not exist, or be empty. */
  out: string;
  /** Only the messages from or to this address (an access request); all of the tenant's when absent. */
  address?: string | undefined;
}

/**
 * The tenant's configuration without secrets (tenant, e-mail servers, destinations as the API
 * shows them: passwords as `hasPassword`), handed in by the composition root: lifecycle does not
 * import accounts.
 */
export type ConfigurationReader = (tenantId: string) => Promise<Record<string, unknown>>;

export interface ExportReport {
  tenantId: string;
  out: string;
  /** Inbound messages listed in the index. */
  messages: number;
  /** Of those, the ones written as `.eml` (the others' sources were removed by retention). */
  emlFiles: number;
  emlBytes: number;
  /** Outgoing messages listed in the index (records only: their bytes are not kept once sent). */
  outbound: number;
}

/** An e-mail address as erasure takes it (lower-case, trimmed), or VALIDATION_FAILED naming the field. */
export function addressArg(value: string, field = 'address'): string {
  const address = value.trim().toLowerCase();
  if (!/^[^\s@]+@[^\s@]+$/.test(address)) {
    throw new MailroomError('VALIDATION_FAILED', `${field} must be an e-mail address`, { field });
  }
  return address;
}

/** The output folder: created (0700), or refused when it holds anything (an export never overwrites). */
async function prepareOut(out: string): Promise<string> {
  if (out.trim() === '') throw new MailroomError('VALIDATION_FAILED', 'out must name a folder', { field: 'out' });
  const dir = resolve(out);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') {
      throw new MailroomError('VALIDATION_FAILED', `out ${dir} is a file, not a folder`, { field: 'out' });
    }
    if (code !== 'ENOENT') throw err;
    entries = [];
  }
  if (entries.length > 0) {
    throw new MailroomError('VALIDATION_FAILED', `out ${dir} is not empty (an export never overwrites)`, {
      field: 'out',
    });
  }
  await mkdir(join(dir, 'messages'), { recursive: true, mode: DIR_MODE });
  return dir;
}

async function writePrivate(path: string, data: string | Buffer): Promise<void> {
  await writeFile(path, data, { mode: FILE_MODE, flag: constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY });
}

function messageEntry(m: ExportedMessage, eml: string | null, missing: string | null): Record<string, unknown> {
  return {
    id: m.id,
    eml,
    ...(missing !== null && { emlMissing: missing }),
    serverId: m.serverId,
    destinationIds: m.destinationIds,
    mailbox: m.mailbox,
    uid: m.uid,
    status: m.status,
    messageId: m.messageIdHeader,
    conversationId: m.conversationId,
    inReplyTo: m.inReplyTo,
    subject: m.subject,
    from: m.from,
    recipients: m.recipients,
    attachments: m.attachments,
    sentAt: m.sentAt?.toISOString() ?? null,
    receivedAt: m.receivedAt.toISOString(),
    ingestedAt: m.ingestedAt.toISOString(),
    size: m.size,
  };
}

function outboundEntry(o: ExportedOutbound): Record<string, unknown> {
  return {
    id: o.id,
    destinationId: o.destinationId,
    serverId: o.serverId,
    status: o.status,
    messageId: o.messageIdHeader,
    conversationId: o.conversationId,
    subject: o.subject,
    recipients: o.recipients,
    createdAt: o.createdAt.toISOString(),
    sentAt: o.sentAt?.toISOString() ?? null,
  };
}

/** Writes JSON array items to an open file, comma-separated, as they come. */
class JsonArrayWriter {
  private first = true;
  constructor(private readonly file: FileHandle) {}
  async push(value: unknown): Promise<void> {
    await this.file.write(`${this.first ? '\n' : ',\n'}    ${JSON.stringify(value)}`);
    this.first = false;
  }
  async end(): Promise<void> {
    await this.file.write(this.first ? ']' : '\n  ]');
  }
}

/**
 * `mailroom export`: a tenant's configuration (no secrets) and its messages, for a move to another
 * installation or a customer's access request (`address`). Writes into an empty folder:
 *
 *     configuration.json   tenant, e-mail servers, destinations, retention
 *     messages/<id>.eml    each inbound message's source, byte for byte, from whichever backend holds it
 *     index.json           every message (metadata, and its .eml or why there is none) and outgoing record
 *
 * Pages of 200 along the age index, sources read 8 at a time: memory stays flat however large
 * the tenant. `index.json` is written last (under a temporary name until whole), so a folder
 * without it is an export that did not finish.
 */
export async function exportTenant(
  deps: { store: Store; configuration: ConfigurationReader; logger: Logger },
  request: ExportRequest,
): Promise<ExportReport> {
  const { store } = deps;
  const address = request.address === undefined ? null : addressArg(request.address);
  const out = await prepareOut(request.out);
  const log = deps.logger.child({ tenantId: request.tenantId, component: 'export' });
  const configuration = {
    ...(await deps.configuration(request.tenantId)),
    retention: await store.lifecycle.policy(request.tenantId),
  };
  await writePrivate(join(out, 'configuration.json'), `${JSON.stringify(configuration, null, 2)}\n`);

  const report: ExportReport = {
    tenantId: request.tenantId,
    out,
    messages: 0,
    emlFiles: 0,
    emlBytes: 0,
    outbound: 0,
  };
  const partial = join(out, 'index.json.partial');
  const index = await open(partial, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, FILE_MODE);
  try {
    const head = { tenantId: request.tenantId, exportedAt: new Date().toISOString(), filteredByAddress: address };
    await index.write(`${JSON.stringify(head, null, 2).slice(0, -2)},\n  "messages": [`);
    const messages = new JsonArrayWriter(index);
    let cursor: ExportCursor | null = null;
    for (;;) {
      const page = await store.exports.messages(request.tenantId, address, cursor, PAGE);
      const entries = await mapLimited(page, READ_CONCURRENCY, async (m) => {
        if (m.sourceStore === null) return messageEntry(m, null, 'removed by retention');
        const raw = await store.sources.read({ tenantId: request.tenantId, messageId: m.id }, m.sourceStore);
        if (raw === null) return messageEntry(m, null, `not found in ${m.sourceStore}`);
        const name = `messages/${m.id}.eml`;
        await writePrivate(join(out, name), raw);
        report.emlFiles += 1;
        report.emlBytes += raw.length;
        return messageEntry(m, name, null);
      });
      for (const entry of entries) await messages.push(entry);
      report.messages += page.length;
      const last = page[page.length - 1];
      if (page.length < PAGE || !last) break;
      cursor = { at: last.ingestedAt, id: last.id };
    }
    await messages.end();
    await index.write(',\n  "outbound": [');
    const outbound = new JsonArrayWriter(index);
    cursor = null;
    for (;;) {
      const page = await store.exports.outbound(request.tenantId, address, cursor, PAGE);
      for (const o of page) await outbound.push(outboundEntry(o));
      report.outbound += page.length;
      const last = page[page.length - 1];
      if (page.length < PAGE || !last) break;
      cursor = { at: last.createdAt, id: last.id };
    }
    await outbound.end();
    await index.write('\n}\n');
    await index.sync();
  } finally {
    await index.close();
  }
  await rename(partial, join(out, 'index.json'));
  // The address is personal data: the log says only that the export was filtered by one.
  log.info({ ...report, byAddress: address !== null }, 'export written');
  return report;
}
