import { isMailroomError } from '../shared/errors.js';

export interface OutputOptions {
  json?: boolean;
}

/** Prints a result: JSON with --json, otherwise a readable form. */
export function print(value: unknown, options: OutputOptions): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) process.stdout.write('(none)\n');
    for (const item of value) process.stdout.write(`${summaryOf(item)}\n`);
    return;
  }
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function summaryOf(item: unknown): string {
  if (typeof item !== 'object' || item === null) return String(item);
  const o = item as Record<string, unknown>;
  const parts = [o.id, o.name];
  if (typeof o.address === 'string') parts.push(`<${o.address}>`);
  const imap = o.imap as { user?: string; host?: string } | undefined;
  if (imap?.user) parts.push(`${imap.user}@${imap.host ?? ''}`);
  return parts.filter((p) => p !== undefined).join('  ');
}

/** Prints an error as `error CODE: message` and returns the exit code. */
export function printError(err: unknown): number {
  if (isMailroomError(err)) {
    const field = err.field ? ` [field: ${err.field}]` : '';
    process.stderr.write(`error ${err.code}: ${err.message}${field}\n`);
    return err.code === 'VALIDATION_FAILED' ? 2 : 1;
  }
  // What the system refused (a port in use, a file missing) is for the user to fix: no stack.
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string') {
    process.stderr.write(`error: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}
