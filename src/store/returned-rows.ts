/**
 * The rows an UPDATE or DELETE … RETURNING answered: TypeORM hands those back as
 * `[rows, affected]` (INSERT and SELECT as the rows alone).
 */
export async function returned<T = Record<string, unknown>>(result: Promise<unknown>): Promise<T[]> {
  const value = await result;
  if (Array.isArray(value) && value.length === 2 && Array.isArray(value[0]) && typeof value[1] === 'number') {
    return value[0] as T[];
  }
  return value as T[];
}
