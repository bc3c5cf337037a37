import { TemplateCatalog } from './catalog.js';
import { checkLoadedFile } from './checker.js';
import type { LoaderOptions } from './loader.js';
import type { TemplateProblem } from './types.js';

export interface DirectoryCheck {
  files: string[];
  problems: TemplateProblem[];
  errors: number;
  warnings: number;
}

/** Loads every response file of a directory once and checks it (`mailroom templates check`). */
export async function checkDirectory(dir: string, options: LoaderOptions = {}): Promise<DirectoryCheck> {
  const catalog = new TemplateCatalog({ ...options, dir, watch: false, pollIntervalMs: 0 });
  await catalog.reload();
  const problems = [...catalog.problems()];
  for (const file of catalog.files()) {
    const loaded = catalog.get(file);
    if (loaded) problems.push(...checkLoadedFile(loaded));
  }
  problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  const errors = problems.filter((p) => p.severity === 'error').length;
  return { files: catalog.files(), problems, errors, warnings: problems.length - errors };
}

/** `file:line: severity: reason (response 'name')`, one problem per line. */
export function formatProblem(p: TemplateProblem): string {
  const response = p.response === undefined ? '' : ` (response '${p.response}')`;
  return `${p.file || '.'}:${p.line}: ${p.severity}: ${p.reason}${response}`;
}
