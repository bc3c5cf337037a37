import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ResponseFileSettingsRow } from '../store/response-file-settings.js';
import type { DestinationRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { TemplateCatalog } from './catalog.js';
import { checkLocale, type AgentInfo, type RenderContext } from './identifiers.js';
import { renderResponse, type RenderedResponse } from './renderer.js';
import { walkResponses } from './types.js';
import { problemView, settingsView, treeView, type ResponsesView, type SettingsView } from './views.js';

export interface RenderRequest {
  tenantId: string;
  destinationId: string;
  /** Response file, relative to the templates directory, e.g. `support.xml`. */
  file: string;
  /** Response name; with duplicates in one group, the first in document order. */
  name: string;
  /**
   * The names of the groups around the response, outermost first ([] for the file's top level),
   * as in the tree. Needed only when responses of that name sit in different groups.
   */
  group?: string[];
  /** The incoming message replied to: `$Subject$`, `$From…$`, `$Received…$`, `$CallID$`. */
  messageId?: string;
  agent?: AgentInfo;
  /** Defaults to the sender of the incoming message. */
  customer?: { name?: string; email?: string };
  /** Overrides the destination's locale and time zone. */
  locale?: string;
  timeZone?: string;
}

export interface TemplateServiceOptions {
  /** [en-US] locale when neither the request nor the destination names one. */
  defaultLocale?: string;
  /** [UTC] time zone when neither the request nor the destination names one. */
  defaultTimeZone?: string;
  /** [() => new Date()] the clock for `$Date$` and `$Time$`. */
  now?: () => Date;
  logger?: Logger;
}

/** Response files per destination: the tree, the selection, rendering with a message's values. */
export class TemplateService {
  private readonly now: () => Date;

  constructor(
    private readonly store: Store,
    private readonly catalog: TemplateCatalog,
    private readonly options: TemplateServiceOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /**
   * The response files the destination offers, as a tree, with their current problems; with
   * `usableOnly`, without the responses that cannot be used (see `treeView`).
   */
  async responses(tenantId: string, destinationId: string, usableOnly = false): Promise<ResponsesView> {
    await this.destination(tenantId, destinationId);
    const settings = await this.store.responseFiles.get(tenantId, destinationId);
    const files = this.catalog.files().filter((f) => settings?.files == null || settings.files.includes(f));
    return {
      settings: settingsView(settings),
      responseFiles: files.flatMap((file) => {
        const loaded = this.catalog.get(file);
        return loaded ? [{ file, items: treeView(loaded.items, usableOnly) }] : [];
      }),
      problems: this.catalog
        .problems()
        .filter((p) => files.includes(p.file))
        .map(problemView),
    };
  }

  /**
   * Chooses the destination's response files (null: all of them) and, when given, its locale and
   * time zone (null: the engine default; omitted: unchanged).
   */
  async configure(
    tenantId: string,
    destinationId: string,
    input: { files: string[] | null; locale?: string | null; timeZone?: string | null },
  ): Promise<SettingsView> {
    await this.destination(tenantId, destinationId);
    const known = new Set(this.catalog.files());
    const unknown = (input.files ?? []).find((f) => !known.has(f));
    if (unknown !== undefined) {
      throw new MailroomError('VALIDATION_FAILED', `'${unknown}' is not a response file of the templates directory`, {
        field: 'files',
        details: { known: [...known] },
      });
    }
    const current = await this.store.responseFiles.get(tenantId, destinationId);
    const row = {
      tenantId,
      destinationId,
      files: input.files === null ? null : [...new Set(input.files)],
      locale: input.locale === undefined ? (current?.locale ?? null) : input.locale,
      timeZone: input.timeZone === undefined ? (current?.timeZone ?? null) : input.timeZone,
    };
    validLocale(row.locale ?? 'en-US', row.timeZone ?? 'UTC');
    await this.store.transaction(async (tx) => {
      if (row.files === null && row.locale === null && row.timeZone === null) {
        await tx.responseFiles.delete(tenantId, destinationId);
      } else {
        await tx.responseFiles.put(row);
      }
      const before = {
        files: current?.files ?? null,
        locale: current?.locale ?? null,
        timeZone: current?.timeZone ?? null,
      };
      await tx.audit.record({
        tenantId,
        action: 'response-files.configured',
        targetKind: 'destination',
        targetId: destinationId,
        detail: { before, after: { files: row.files, locale: row.locale, timeZone: row.timeZone } },
      });
    });
    return settingsView({ ...row, updatedAt: new Date() });
  }

  /** Renders a response for a reply from this destination. */
  async render(request: RenderRequest): Promise<RenderedResponse> {
    const { tenantId, destinationId, file, name, group } = request;
    const destination = await this.destination(tenantId, destinationId);
    const settings = await this.store.responseFiles.get(tenantId, destinationId);
    const response = this.find(settings, file, name, group);
    const message = request.messageId === undefined ? null : await this.store.messages.get(tenantId, request.messageId);
    if (request.messageId !== undefined && !message) {
      throw new MailroomError('MESSAGE_NOT_FOUND', `message ${request.messageId} does not exist in this tenant`, {
        field: 'messageId',
      });
    }
    const locale = request.locale ?? settings?.locale ?? this.options.defaultLocale ?? 'en-US';
    const timeZone = request.timeZone ?? settings?.timeZone ?? this.options.defaultTimeZone ?? 'UTC';
    validLocale(locale, timeZone);
    const ctx: RenderContext = {
      now: this.now(),
      locale,
      timeZone,
      serviceGroup: { name: destination.name, address: destination.address },
      ...(message && { callId: message.id, message }),
      ...(request.agent && { agent: request.agent }),
      ...(request.customer && { customer: request.customer }),
    };
    const rendered = renderResponse(response, ctx);
    if (rendered.unknownIdentifiers.length > 0) {
      this.options.logger?.warn(
        { tenantId, destinationId, file, response: name, identifiers: rendered.unknownIdentifiers },
        'response uses unknown identifiers; they were left as written',
      );
    }
    return rendered;
  }

  /**
   * The response named `name` (in `group` when given). Responses of that name in different groups
   * (the same name in an English and a German group) need the group: picking the first would send
   * the wrong one without a word.
   */
  private find(settings: ResponseFileSettingsRow | null, file: string, name: string, group?: string[]) {
    const loaded = settings?.files != null && !settings.files.includes(file) ? undefined : this.catalog.get(file);
    if (!loaded) {
      throw new MailroomError('TEMPLATE_NOT_FOUND', `response file '${file}' is not available for this destination`, {
        field: 'file',
      });
    }
    const path = (groups: string[]): string => (groups.length === 0 ? 'the top level' : `'${groups.join(' / ')}'`);
    const found = [...walkResponses(loaded.items)].filter(
      (r) => r.response.name === name && (group === undefined || sameGroup(r.groups, group)),
    );
    const first = found[0];
    if (!first) {
      const where = group === undefined ? '' : ` in ${path(group)}`;
      throw new MailroomError('TEMPLATE_NOT_FOUND', `'${file}' has no response named '${name}'${where}`, {
        field: group === undefined ? 'name' : 'group',
      });
    }
    if (found.some((r) => !sameGroup(r.groups, first.groups))) {
      const places = [...new Set(found.map((r) => path(r.groups)))].join(', ');
      throw new MailroomError(
        'VALIDATION_FAILED',
        `'${file}' has responses named '${name}' in ${places}: give 'group' (the group names, outermost first) to choose one`,
        { field: 'group' },
      );
    }
    return first.response;
  }

  private async destination(tenantId: string, destinationId: string): Promise<DestinationRow> {
    const destination = await this.store.destinations.get(tenantId, destinationId);
    if (!destination) {
      throw new MailroomError('DESTINATION_NOT_FOUND', `destination ${destinationId} does not exist in this tenant`);
    }
    return destination;
  }
}

function sameGroup(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

function validLocale(locale: string, timeZone: string): void {
  for (const [field, value, check] of [
    ['locale', locale, () => checkLocale(locale, 'UTC')],
    ['timeZone', timeZone, () => checkLocale('en-US', timeZone)],
  ] as const) {
    try {
      check();
    } catch {
      throw new MailroomError('VALIDATION_FAILED', `'${field}' ${value} is not known`, { field });
    }
  }
}
