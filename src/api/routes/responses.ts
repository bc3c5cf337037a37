import { Type, type Static } from '@sinclair/typebox';
import { MailroomError } from '../../shared/errors.js';
import type { Templates } from '../../templates/index.js';
import { renderView, RenderView, ResponsesView, SettingsView } from '../../templates/views.js';
import { DestinationParams } from '../params.js';
import type { RouteContext, RouteDef } from '../route.js';

const tags = ['response files'];
const base = '/api/v1/tenants/:tenantId/destinations/:destinationId/responses';
const strict = { additionalProperties: false } as const;
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });
const Nullable = <T extends ReturnType<typeof Text>>(t: T) => Type.Union([t, Type.Null()]);

const RenderBody = Type.Object(
  {
    file: Text(500),
    name: Text(500),
    /** The groups around the response, outermost first: needed when its name is used in several groups. */
    group: Type.Optional(Type.Array(Text(500), { maxItems: 100 })),
    messageId: Type.Optional(Type.String({ format: 'uuid' })),
    agent: Type.Optional(
      Type.Object(
        {
          name: Text(200),
          firstName: Type.Optional(Type.String({ maxLength: 200 })),
          lastName: Type.Optional(Type.String({ maxLength: 200 })),
          chatName: Type.Optional(Type.String({ maxLength: 200 })),
        },
        strict,
      ),
    ),
    customer: Type.Optional(
      Type.Object(
        { name: Type.Optional(Type.String({ maxLength: 200 })), email: Type.Optional(Type.String({ maxLength: 320 })) },
        strict,
      ),
    ),
    locale: Type.Optional(Text(50)),
    timeZone: Type.Optional(Text(100)),
  },
  strict,
);
type RenderBody = Static<typeof RenderBody>;

const FilesBody = Type.Object(
  {
    files: Type.Union([Type.Array(Text(500), { maxItems: 1000 }), Type.Null()]),
    locale: Type.Optional(Nullable(Text(50))),
    timeZone: Type.Optional(Nullable(Text(100))),
  },
  strict,
);
type FilesBody = Static<typeof FilesBody>;

function templatesOf(ctx: RouteContext): Templates {
  if (!ctx.templates) throw new MailroomError('UNAVAILABLE', 'response files are not configured in this engine');
  return ctx.templates;
}

export const responseRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: base,
    access: 'tenant',
    summary:
      "The destination's response files as a tree of groups and responses (empty groups hidden), " +
      'its file selection, and the problems of those files (file, line, reason). `usableOnly=true`: ' +
      'as agents are shown it, without responses that cannot be used and the groups they leave empty.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'UNAVAILABLE'],
    schema: {
      params: DestinationParams,
      querystring: Type.Object({ usableOnly: Type.Optional(Type.Boolean()) }, strict),
      response: { 200: ResponsesView },
    },
    handler: async (req, _reply, ctx) => {
      const p = req.params as DestinationParams;
      const q = req.query as { usableOnly?: boolean };
      return templatesOf(ctx).responses(p.tenantId, p.destinationId, q.usableOnly === true);
    },
  },
  {
    method: 'POST',
    url: `${base}/render`,
    access: 'tenant',
    summary:
      'Render a response with its identifiers filled: from the incoming message (`messageId`), the destination, ' +
      'the agent and now. Text or HTML; images come as inline attachments referenced by `cid:`.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'MESSAGE_NOT_FOUND', 'TEMPLATE_NOT_FOUND', 'TEMPLATE_UNAVAILABLE', 'UNAVAILABLE'],
    schema: { params: DestinationParams, body: RenderBody, response: { 200: RenderView } },
    handler: async (req, _reply, ctx) => {
      const p = req.params as DestinationParams;
      const body = req.body as RenderBody;
      return renderView(
        await templatesOf(ctx).render({ ...body, tenantId: p.tenantId, destinationId: p.destinationId }),
      );
    },
  },
  {
    method: 'PUT',
    url: `${base}/files`,
    access: 'tenant',
    summary:
      "Choose the destination's response files (`null`: every file, the default) and optionally its locale " +
      'and time zone for dates (`null`: engine default; omitted: unchanged).',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'TEMPLATE_NOT_FOUND', 'UNAVAILABLE'],
    schema: { params: DestinationParams, body: FilesBody, response: { 200: SettingsView } },
    handler: async (req, _reply, ctx) => {
      const p = req.params as DestinationParams;
      return templatesOf(ctx).configure(p.tenantId, p.destinationId, req.body as FilesBody);
    },
  },
];
