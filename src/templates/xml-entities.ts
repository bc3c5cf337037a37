/**
 * XML character references and the five predefined entities. Nothing else is expanded: response
 * files may not declare entities (a DOCTYPE is refused before parsing), so there is no XXE and no
 * "billion laughs".
 */

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

const REFERENCE = /&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z_][\w.-]*);?/g;

/** Thrown for a reference XML does not allow; the caller adds the file and line. */
export class EntityError extends Error {}

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** Replaces `&lt;`, `&#x0d;`, `&#10;`, … by their characters. */
export function decodeXmlText(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(REFERENCE, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw new EntityError(`'${whole}' is not terminated by ';'`);
    if (ref.startsWith('#')) {
      const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!isXmlChar(cp)) throw new EntityError(`'${whole}' is not a valid XML character`);
      return String.fromCodePoint(cp);
    }
    const value = PREDEFINED[ref];
    if (value === undefined) {
      throw new EntityError(
        `entity '${whole}' is not defined (only &lt; &gt; &amp; &quot; &apos; and &#…; are allowed)`,
      );
    }
    return value;
  });
}

/** The 1-based line of a character offset. */
export function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line += 1;
  return line;
}
