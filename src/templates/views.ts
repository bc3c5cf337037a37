import { Type, type Static } from '@sinclair/typebox';
import type { ResponseFileSettingsRow } from '../store/response-file-settings.js';
import type { RenderedResponse } from './renderer.js';
import type { TemplateProblem, TreeItem } from './types.js';

export const ProblemView = Type.Object({
  file: Type.String(),
  line: Type.Integer(),
  response: Type.Optional(Type.String()),
  severity: Type.Union([Type.Literal('error'), Type.Literal('warning')]),
  reason: Type.String(),
});

const ResponseNodeView = Type.Object({
  type: Type.Literal('response'),
  name: Type.String(),
  description: Type.String(),
  kind: Type.Union([Type.Literal('text'), Type.Literal('html'), Type.Literal('image')]),
  src: Type.Union([Type.String(), Type.Null()]),
  /** false when its Src could not be loaded (see `problems`). */
  available: Type.Boolean(),
});

/** A group holds groups and responses, nested without limit. */
export const TreeNodeView = Type.Recursive(
  (Node) =>
    Type.Union([
      ResponseNodeView,
      Type.Object({
        type: Type.Literal('group'),
        name: Type.String(),
        expanded: Type.Boolean(),
        items: Type.Array(Node),
      }),
    ]),
  { $id: 'ResponseTreeNode' },
);
export type TreeNodeView = Static<typeof TreeNodeView>;

export const SettingsView = Type.Object({
  /** The files chosen for the destination; null: every response file. */
  files: Type.Union([Type.Array(Type.String()), Type.Null()]),
  locale: Type.Union([Type.String(), Type.Null()]),
  timeZone: Type.Union([Type.String(), Type.Null()]),
});
export type SettingsView = Static<typeof SettingsView>;

export const ResponsesView = Type.Object({
  settings: SettingsView,
  responseFiles: Type.Array(Type.Object({ file: Type.String(), items: Type.Array(TreeNodeView) })),
  problems: Type.Array(ProblemView),
});
export type ResponsesView = Static<typeof ResponsesView>;

export const RenderView = Type.Object({
  text: Type.Optional(Type.String()),
  html: Type.Optional(Type.String()),
  attachments: Type.Array(
    Type.Object({
      filename: Type.String(),
      contentType: Type.String(),
      cid: Type.String(),
      contentBase64: Type.String(),
    }),
  ),
  unknownIdentifiers: Type.Array(Type.String()),
});
export type RenderView = Static<typeof RenderView>;

/**
 * The tree as agents see it: groups left empty are not shown. With `usableOnly`, as the reference
 * shows it to agents: responses that cannot be used (an unsupported or missing Src) are left out
 * too, and so are the groups they leave empty; without it they are listed with `available: false`.
 */
export function treeView(items: TreeItem[], usableOnly = false): TreeNodeView[] {
  const out: TreeNodeView[] = [];
  for (const item of items) {
    if (item.type === 'response') {
      if (usableOnly && item.unavailable !== undefined) continue;
      const { name, description, kind, src } = item;
      out.push({ type: 'response', name, description, kind, src, available: item.unavailable === undefined });
      continue;
    }
    const children = treeView(item.items, usableOnly);
    if (children.length > 0) out.push({ type: 'group', name: item.name, expanded: item.expanded, items: children });
  }
  return out;
}

export function settingsView(row: ResponseFileSettingsRow | null): SettingsView {
  return { files: row?.files ?? null, locale: row?.locale ?? null, timeZone: row?.timeZone ?? null };
}

export function problemView(p: TemplateProblem): Static<typeof ProblemView> {
  return {
    file: p.file,
    line: p.line,
    ...(p.response !== undefined && { response: p.response }),
    severity: p.severity,
    reason: p.reason,
  };
}

export function renderView(r: RenderedResponse): RenderView {
  return {
    ...(r.text !== undefined && { text: r.text }),
    ...(r.html !== undefined && { html: r.html }),
    attachments: r.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      cid: a.cid,
      contentBase64: a.content.toString('base64'),
    })),
    unknownIdentifiers: r.unknownIdentifiers,
  };
}
