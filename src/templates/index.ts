import type { Logger } from '../shared/logger.js';
import type { Store } from '../store/store.js';
import { TemplateCatalog, type CatalogOptions, type ReloadReport } from './catalog.js';
import type { RenderedResponse } from './renderer.js';
import { TemplateService, type RenderRequest, type TemplateServiceOptions } from './service.js';
import type { TemplateProblem } from './types.js';
import type { ResponsesView, SettingsView } from './views.js';

export type { AgentInfo, RenderContext } from './identifiers.js';
export type { RenderedAttachment, RenderedResponse } from './renderer.js';
export type { RenderRequest } from './service.js';
export type { ReloadReport } from './catalog.js';
export type { TemplateProblem } from './types.js';

/** What the outbound side needs: a reply body from a response, ready for nodemailer. */
export interface ResponseRenderer {
  render(request: RenderRequest): Promise<RenderedResponse>;
}

/** Response files as the composition root and the API see them. */
export interface Templates extends ResponseRenderer {
  responses(tenantId: string, destinationId: string, usableOnly?: boolean): Promise<ResponsesView>;
  configure(
    tenantId: string,
    destinationId: string,
    input: { files: string[] | null; locale?: string | null; timeZone?: string | null },
  ): Promise<SettingsView>;
  problems(): TemplateProblem[];
  /** Re-reads changed files now (tests, or an administrator who does not want to wait). */
  reload(): Promise<ReloadReport>;
  catalog: TemplateCatalog;
  /** Loads the directory and starts watching it. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createTemplates(deps: {
  store: Store;
  logger: Logger;
  /** Where and how response files are loaded; `dir` is MAILROOM_TEMPLATES_DIR. */
  catalog: Omit<CatalogOptions, 'logger'>;
  options?: Omit<TemplateServiceOptions, 'logger'>;
}): Templates {
  const logger = deps.logger.child({ component: 'templates' });
  const catalog = new TemplateCatalog({ ...deps.catalog, logger });
  const service = new TemplateService(deps.store, catalog, { ...deps.options, logger });
  return {
    catalog,
    render: (request) => service.render(request),
    responses: (tenantId, destinationId, usableOnly) => service.responses(tenantId, destinationId, usableOnly),
    configure: (tenantId, destinationId, input) => service.configure(tenantId, destinationId, input),
    problems: () => catalog.problems(),
    reload: () => catalog.reload(),
    async start() {
      const report = await catalog.start();
      logger.info(
        { dir: deps.catalog.dir, files: catalog.files().length, problems: report.problems.length },
        'response files loaded',
      );
    },
    stop: () => catalog.stop(),
  };
}
