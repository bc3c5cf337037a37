import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A scratch templates directory inside a scratch parent (where "outside" files can be put). */
export interface TemplateDir {
  /** The parent: files here are outside the templates directory. */
  parent: string;
  /** The templates directory. */
  dir: string;
  /** Writes a file relative to the templates directory (folders are created). */
  write(rel: string, content: string | Buffer): Promise<void>;
  remove(): Promise<void>;
}

export async function makeTemplateDir(files: Record<string, string | Buffer> = {}): Promise<TemplateDir> {
  const parent = await realpath(await mkdtemp(join(tmpdir(), 'mailroom-templates-')));
  const dir = join(parent, 'templates');
  await mkdir(dir);
  const write = async (rel: string, content: string | Buffer): Promise<void> => {
    const path = join(dir, rel);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
  };
  for (const [rel, content] of Object.entries(files)) await write(rel, content);
  return { parent, dir, write, remove: () => rm(parent, { recursive: true, force: true }) };
}

/** A response file around the given XML body. */
export function responseFile(body: string): string {
  return `<?xml version="1.0" encoding="utf-8"?>\n<ResponseFile>\n${body}\n</ResponseFile>\n`;
}
