import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { decodeXmlText, EntityError, lineAt } from './xml-entities.js';

/**
 * Reads the XML of a response file into groups and responses. The only file that knows
 * fast-xml-parser. DTDs are refused outright and the parser expands no entities (we decode the
 * five predefined ones and character references ourselves), so XXE and entity bombs cannot work.
 */

export interface XmlResponse {
  type: 'response';
  name: string;
  description: string | undefined;
  src: string | undefined;
  /** Inner text with XML escapes decoded; surrounding literal whitespace trimmed. */
  text: string;
  line: number;
}

export interface XmlGroup {
  type: 'group';
  name: string;
  expanded: boolean;
  line: number;
  items: XmlItem[];
}

export type XmlItem = XmlGroup | XmlResponse;

/** Why a file cannot be used at all, with the 1-based line. */
export class ResponseFileError extends Error {
  constructor(
    readonly line: number,
    reason: string,
  ) {
    super(reason);
  }
}

type XmlNode = Record<string, unknown> & { ':@'?: Record<string, string> };

/**
 * Deepest nesting of elements read (`ResponseFile`, groups, a response): the reference calls the
 * nesting of groups unlimited; a bound keeps a hostile file from exhausting the stack. 1,000 is
 * far beyond any file a person writes (the parser's own default, 100, is not).
 */
export const MAX_NESTING = 1000;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  trimValues: false,
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
  htmlEntities: false,
  captureMetaData: true,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: MAX_NESTING,
});
const META = XMLParser.getMetaDataSymbol() as unknown as string;

/** Parses a response file's text. Throws ResponseFileError (line, reason) when it is not usable. */
export function parseResponseXml(source: string): XmlItem[] {
  // XML end-of-line handling: literal CR LF and CR become LF; encoded &#x0d; survives.
  const xml = source.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const dtd = /<!(DOCTYPE|ENTITY)/i.exec(xml);
  if (dtd) {
    throw new ResponseFileError(
      lineAt(xml, dtd.index),
      `${dtd[1]?.toUpperCase()} declarations are not allowed in response files (no DTDs, no custom entities)`,
    );
  }
  const valid = XMLValidator.validate(xml, { allowBooleanAttributes: false });
  if (valid !== true) throw new ResponseFileError(valid.err.line, `XML is not well-formed: ${valid.err.msg}`);
  const tooDeep = deeperThan(xml, MAX_NESTING);
  if (tooDeep !== null) {
    throw new ResponseFileError(
      lineAt(xml, tooDeep),
      `groups are nested more than ${MAX_NESTING - 2} deep here; response files are read to that depth`,
    );
  }
  const doc = parser.parse(xml) as XmlNode[];
  const roots = doc.filter((n) => tagOf(n) !== undefined);
  const root = roots[0];
  if (roots.length !== 1 || !root || tagOf(root) !== 'ResponseFile') {
    throw new ResponseFileError(root ? lineOf(xml, root) : 1, 'the root element must be <ResponseFile>');
  }
  return childrenOf(xml, root, 'ResponseFile');
}

/** Where the nesting of elements first goes deeper than `limit` (an index into `xml`), or null. */
function deeperThan(xml: string, limit: number): number | null {
  let depth = 0;
  // Comments, CDATA and declarations hold no elements; a well-formed document (checked before)
  // has no `<` elsewhere in text or attribute values (a `>` in a quoted value is skipped).
  for (const tag of xml.matchAll(/<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>|<(\/?)(?:[^>"']|"[^"]*"|'[^']*')*?(\/?)>/g)) {
    if (tag[0].startsWith('<!') || tag[0].startsWith('<?')) continue;
    if (tag[1] === '/') depth -= 1;
    else if (tag[2] !== '/') {
      depth += 1;
      if (depth > limit) return tag.index;
    }
  }
  return null;
}

function tagOf(node: XmlNode): string | undefined {
  return Object.keys(node).find((k) => k !== ':@' && k !== '#text' && k !== '#cdata');
}

/** CDATA content: preserveOrder keeps it as `[{ '#text': … }]`. */
function cdataOf(node: XmlNode): string {
  const value = node['#cdata'];
  if (Array.isArray(value)) return value.map((v: { '#text'?: unknown }) => String(v['#text'] ?? '')).join('');
  return typeof value === 'string' ? value : '';
}

function lineOf(xml: string, node: XmlNode): number {
  const meta = node[META] as { startIndex?: number } | undefined;
  return meta?.startIndex === undefined ? 0 : lineAt(xml, meta.startIndex);
}

function decode(line: number, raw: string): string {
  try {
    return decodeXmlText(raw);
  } catch (err) {
    if (err instanceof EntityError) throw new ResponseFileError(line, err.message);
    throw err;
  }
}

/** XML attribute-value normalization (literal tabs and newlines become spaces), then references. */
function attribute(node: XmlNode, name: string, line: number): string | undefined {
  const raw = node[':@']?.[name];
  return raw === undefined ? undefined : decode(line, raw.replace(/[\t\n]/g, ' '));
}

function requiredName(node: XmlNode, tag: string, line: number): string {
  const name = attribute(node, 'Name', line)?.trim();
  if (!name) throw new ResponseFileError(line, `<${tag}> needs a Name attribute`);
  return name;
}

function childrenOf(xml: string, node: XmlNode, tag: string): XmlItem[] {
  const items: XmlItem[] = [];
  for (const child of node[tag] as XmlNode[]) {
    const childTag = tagOf(child);
    const line = lineOf(xml, child);
    if (childTag === undefined) {
      const text = typeof child['#text'] === 'string' ? child['#text'] : cdataOf(child);
      if (text.trim() !== '') throw new ResponseFileError(line || lineOf(xml, node), `text is not allowed in <${tag}>`);
    } else if (childTag === 'Group') {
      items.push(groupOf(xml, child, line));
    } else if (childTag === 'Response') {
      items.push(responseOf(xml, child, line));
    } else {
      throw new ResponseFileError(line, `unknown element <${childTag}> in <${tag}> (expected <Group> or <Response>)`);
    }
  }
  return items;
}

function groupOf(xml: string, node: XmlNode, line: number): XmlGroup {
  const name = requiredName(node, 'Group', line);
  const expandedText = attribute(node, 'Expanded', line)?.trim().toLowerCase() ?? 'false';
  if (expandedText !== 'true' && expandedText !== 'false') {
    throw new ResponseFileError(line, `Expanded of group '${name}' must be "true" or "false"`);
  }
  return { type: 'group', name, expanded: expandedText === 'true', line, items: childrenOf(xml, node, 'Group') };
}

function responseOf(xml: string, node: XmlNode, line: number): XmlResponse {
  const name = requiredName(node, 'Response', line);
  const parts: string[] = [];
  for (const child of node.Response as XmlNode[]) {
    const childTag = tagOf(child);
    if (childTag !== undefined) {
      throw new ResponseFileError(
        lineOf(xml, child),
        `response '${name}' contains the element <${childTag}>: write < as &lt; in inner text, or use an HTML Src file`,
      );
    }
    if (typeof child['#text'] === 'string') parts.push(child['#text']);
    else parts.push(cdataOf(child).replace(/&/g, '&amp;').replace(/</g, '&lt;'));
  }
  // Literal whitespace around the text is layout; encoded line breaks (&#x0d;&#x0a;) are kept.
  const text = decode(line, parts.join('').trim());
  const src = attribute(node, 'Src', line)?.trim() || undefined;
  if (src === undefined && text === '') {
    throw new ResponseFileError(line, `response '${name}' needs a Src attribute or inner text`);
  }
  return { type: 'response', name, description: attribute(node, 'Description', line), src, text, line };
}
