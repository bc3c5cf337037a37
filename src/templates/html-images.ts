import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { kindOfPath } from './content-types.js';
import { classifySrc, SrcError } from './src-path.js';
import type { InlineImage } from './types.js';

const IMG_SRC = /(<img\b[^>]*?\bsrc\s*=\s*)("([^"]*)"|'([^']*)')/gi;

/** A Content-ID derived from the bytes: the same image always gets the same one. */
export function contentId(content: Buffer): string {
  return `${createHash('sha256').update(content).digest('hex').slice(0, 24)}@mailroom`;
}

export function imageOf(path: string, content: Buffer): InlineImage {
  return {
    filename: posix.basename(path),
    contentType: kindOfPath(path).contentType,
    cid: contentId(content),
    content,
  };
}

/**
 * Rewrites `<img src="relative/path.png">` of an HTML response to `cid:` references and returns
 * the images to attach inline. Web (http/https), `cid:` and `data:` sources are left as they are;
 * paths obey the same confinement as Src. Throws SrcError naming the first image refused.
 * @param baseDir directory of the HTML file, relative to the templates directory
 * @param read reads a confined relative path
 */
export async function inlineImages(
  html: string,
  baseDir: string,
  read: (path: string) => Promise<Buffer>,
): Promise<{ html: string; images: InlineImage[] }> {
  const images = new Map<string, InlineImage>();
  const replacements = new Map<string, string>();
  for (const match of html.matchAll(IMG_SRC)) {
    const src = (match[3] ?? match[4] ?? '').replace(/&amp;/g, '&');
    if (/^(cid|data|https?):/i.test(src) || src.startsWith('//') || replacements.has(src)) continue;
    const target = classifySrc(src, baseDir);
    if (target.kind === 'refused') throw new SrcError(`image ${target.reason}`);
    if (target.kind === 'remote') continue;
    if (kindOfPath(target.path).kind !== 'image')
      throw new SrcError(`<img src="${src}"> is not a supported image type`);
    const image = imageOf(target.path, await read(target.path));
    images.set(image.cid, image);
    replacements.set(src, image.cid);
  }
  const rewritten = html.replace(IMG_SRC, (whole, prefix: string, _q, dq?: string, sq?: string) => {
    const cid = replacements.get((dq ?? sq ?? '').replace(/&amp;/g, '&'));
    return cid === undefined ? whole : `${prefix}"cid:${cid}"`;
  });
  return { html: rewritten, images: [...images.values()] };
}
