/**
 * The key two names are compared by (unique per tenant, or among tenants): NFKC, blanks at
 * either end dropped and runs of blanks made one, lower-cased. NFKC folds the compatibility
 * forms that look like other characters (fullwidth `Ａｃｍｅ`, ligatures `ﬁ`, superscripts), so a
 * name that reads like a taken one is taken too (issue 24 review D). Letters of other scripts that
 * only look alike (Cyrillic `а`) stay distinct: telling those apart needs Unicode's confusables
 * table (UTS #39), which the engine does not carry.
 */
export function nameKeyOf(name: string): string {
  return name.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}
