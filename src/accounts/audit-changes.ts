/**
 * What the audit log keeps of a change to a tenant's settings: the fields that changed (dotted
 * paths of the API's view, before and after) and, for secrets, only whether each changed. Views
 * carry no secret (only `has…` flags), so nothing here can hold one. Pure.
 */

type Flat = Record<string, unknown>;

/** Fields that change with every write and say nothing about it. */
const IGNORED = new Set(['updatedAt', 'createdAt', 'lastUsedAt']);

function flatten(value: unknown, prefix: string, out: Flat): Flat {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      if (prefix === '' && IGNORED.has(key)) continue;
      flatten(inner, prefix === '' ? key : `${prefix}.${key}`, out);
    }
    return out;
  }
  out[prefix] = value;
  return out;
}

/** The fields of two views that differ: `{ before: {path: old}, after: {path: new} }`. */
export function changedFields(before: object, after: object): { before: Flat; after: Flat } {
  const a = flatten(before, '', {});
  const b = flatten(after, '', {});
  const changed = { before: {} as Flat, after: {} as Flat };
  for (const path of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (JSON.stringify(a[path]) === JSON.stringify(b[path])) continue;
    if (path in a) changed.before[path] = a[path];
    if (path in b) changed.after[path] = b[path];
  }
  return changed;
}

/** A view as the audit log keeps it on creation or deletion (without the timestamps). */
export function auditedView(view: object): Flat {
  return flatten(view, '', {});
}

/** Whether a value was given at this dotted path of a request body. */
function givenAt(body: unknown, path: string): boolean {
  let at: unknown = body;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object') return false;
    at = (at as Record<string, unknown>)[key];
  }
  return at !== undefined && at !== null;
}

/**
 * Each secret as 'changed' (a new value was given, or it was set or removed) or 'unchanged'.
 * @param secrets secret name → [its path in the request body, stored before, stored after]
 */
export function secretChanges(
  body: unknown,
  secrets: Record<string, [bodyPath: string, before: boolean, after: boolean]>,
): Record<string, 'changed' | 'unchanged'> {
  const out: Record<string, 'changed' | 'unchanged'> = {};
  for (const [name, [path, before, after]] of Object.entries(secrets)) {
    out[name] = (after && givenAt(body, path)) || before !== after ? 'changed' : 'unchanged';
  }
  return out;
}
