/**
 * IMAP sequence sets (RFC 3501 section 9, `sequence-set`): `1`, `2:4`, `5:*`, `1,3:5`. A range
 * is unordered (`4:2` equals `2:4`), and `*` stands for the largest number in use, so `7:*`
 * still matches the last message when it is numbered below 7.
 */

export type SequenceBound = number | '*';

export interface SequenceRange {
  from: SequenceBound;
  to: SequenceBound;
}

const BOUND = /^(?:\*|[1-9]\d{0,9})$/;

function parseBound(text: string): SequenceBound | undefined {
  if (!BOUND.test(text)) {
    return undefined;
  }
  return text === '*' ? '*' : Number(text);
}

/** Parses a sequence set; undefined when the text is not one. */
export function parseSequenceSet(text: string): SequenceRange[] | undefined {
  const ranges: SequenceRange[] = [];
  for (const part of text.split(',')) {
    const [first, second, extra] = part.split(':');
    if (first === undefined || extra !== undefined) {
      return undefined;
    }
    const from = parseBound(first);
    const to = second === undefined ? from : parseBound(second);
    if (from === undefined || to === undefined) {
      return undefined;
    }
    ranges.push({ from, to });
  }
  return ranges;
}

/** Whether `value` lies in the set, with `*` standing for `largest`. */
export function inSequenceSet(ranges: readonly SequenceRange[], value: number, largest: number): boolean {
  return ranges.some((range) => {
    const from = range.from === '*' ? largest : range.from;
    const to = range.to === '*' ? largest : range.to;
    return value >= Math.min(from, to) && value <= Math.max(from, to);
  });
}

/** Packs ascending or unordered numbers into the shortest set text, e.g. [1, 2, 3, 5] -> `1:3,5`. */
export function formatSequenceSet(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const parts: string[] = [];
  let start = sorted[0];
  let previous = start;
  for (const value of sorted.slice(1)) {
    if (previous !== undefined && value === previous + 1) {
      previous = value;
      continue;
    }
    if (start !== undefined && previous !== undefined) {
      parts.push(start === previous ? `${start}` : `${start}:${previous}`);
    }
    start = value;
    previous = value;
  }
  if (start !== undefined && previous !== undefined) {
    parts.push(start === previous ? `${start}` : `${start}:${previous}`);
  }
  return parts.join(',');
}
