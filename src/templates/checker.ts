import { IDENTIFIER } from './compile.js';
import { identifierValue } from './identifiers.js';
import { lineAt } from './xml-entities.js';
import { walkResponses, type LoadedFile, type TemplatePart, type TemplateProblem } from './types.js';

const MARKUP = /<!--[\s\S]*?-->|<[^>]*>/g;

export interface SplitIdentifier {
  /** The identifier as it reads once the markup is removed, e.g. `$Agent.Name$`. */
  identifier: string;
  /** 1-based line in the HTML where it starts. */
  line: number;
}

/**
 * Identifiers that HTML markup splits, as Word does around words it marks as misspelled
 * (`$Agent.<span class=SpellE>Name</span>$`): they read as one in the browser but are not replaced.
 */
export function findSplitIdentifiers(html: string): SplitIdentifier[] {
  let text = '';
  const rawIndex: number[] = [];
  let last = 0;
  const keep = (from: number, to: number): void => {
    text += html.slice(from, to);
    for (let i = from; i < to; i += 1) rawIndex.push(i);
  };
  for (const tag of html.matchAll(MARKUP)) {
    keep(last, tag.index);
    last = tag.index + tag[0].length;
  }
  keep(last, html.length);
  const found: SplitIdentifier[] = [];
  for (const match of text.matchAll(IDENTIFIER)) {
    const start = rawIndex[match.index] as number;
    const end = rawIndex[match.index + match[0].length - 1] as number;
    if (end - start !== match[0].length - 1) found.push({ identifier: match[0], line: lineAt(html, start) });
  }
  return found;
}

function sourceOf(parts: readonly TemplatePart[]): string {
  return parts.map((p) => (typeof p === 'string' ? p : p.raw)).join('');
}

/** Checks a loaded file: identifiers split by markup (errors), unknown identifiers and responses no one can choose (warnings). */
export function checkLoadedFile(loaded: LoadedFile): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  const seen = new Set<string>();
  for (const { response, groups } of walkResponses(loaded.items)) {
    const key = JSON.stringify([...groups, response.name]);
    if (seen.has(key)) {
      problems.push({
        file: loaded.file,
        line: response.line,
        response: response.name,
        severity: 'warning',
        reason: `another response of this group is named '${response.name}' before it: only the first can be chosen; rename one`,
      });
    }
    seen.add(key);
    if (!response.template || response.kind === 'image') continue;
    const at = { file: loaded.file, line: response.line, response: response.name };
    if (response.kind === 'html') {
      const where = response.src === null ? '' : `Src '${response.src}' `;
      for (const split of findSplitIdentifiers(sourceOf(response.template))) {
        problems.push({
          ...at,
          severity: 'error',
          reason: `${split.identifier} is split by HTML markup (${where}line ${split.line}) and will not be replaced; type it as one continuous string`,
        });
      }
    }
    for (const part of response.template) {
      if (typeof part !== 'string' && !identifierValue(part.identifier)) {
        problems.push({
          ...at,
          severity: 'warning',
          reason: `${part.raw} is not a replaceable identifier; it is left as written`,
        });
      }
    }
  }
  return problems;
}
