/**
 * The loaded shape of response files (see docs: reference "E-mail, chat and SMS response files").
 * Everything here is plain data: the loader builds it, the renderer and the API read it.
 */

/** How a response is inserted: by its file extension, or `text` for inner text. */
export type ResponseKind = 'text' | 'html' | 'image';

/** A template split once at load time into literal text and `$Identifier$` references. */
export type TemplatePart = string | { identifier: string; raw: string };

/** An image sent as an inline attachment and referenced from the HTML as `cid:<cid>`. */
export interface InlineImage {
  filename: string;
  contentType: string;
  /** Stable: derived from the content, so re-renders reuse the same Content-ID. */
  cid: string;
  content: Buffer;
}

export interface LoadedResponse {
  type: 'response';
  name: string;
  /** The Description attribute, or the inner text for plain text responses. */
  description: string;
  kind: ResponseKind;
  /** The Src attribute as written, or null for inner text. */
  src: string | null;
  /** 1-based line of the `<Response>` element in its file. */
  line: number;
  /** The response text or HTML with identifiers found; absent when the response is unavailable. */
  template?: TemplatePart[];
  /** Images the HTML references (or the image itself for image responses). */
  images: InlineImage[];
  /** Why the response cannot be used (its Src is refused, missing or remote while remote Src is off). */
  unavailable?: string;
}

export interface LoadedGroup {
  type: 'group';
  name: string;
  expanded: boolean;
  line: number;
  items: TreeItem[];
}

export type TreeItem = LoadedGroup | LoadedResponse;

export interface LoadedFile {
  /** Path relative to the templates directory, with `/` separators, e.g. `support.xml`. */
  file: string;
  items: TreeItem[];
}

export type Severity = 'error' | 'warning';

/** One finding of the loader or the checker: where, what and how bad. */
export interface TemplateProblem {
  file: string;
  /** 1-based line, 0 when the problem concerns the whole file. */
  line: number;
  /** The response concerned, when there is one. */
  response?: string;
  severity: Severity;
  reason: string;
}

/** Every response of a tree in document order, with the names of the groups around it. */
export function* walkResponses(
  items: TreeItem[],
  groups: string[] = [],
): Generator<{ response: LoadedResponse; groups: string[] }> {
  for (const item of items) {
    if (item.type === 'response') yield { response: item, groups };
    else yield* walkResponses(item.items, [...groups, item.name]);
  }
}
