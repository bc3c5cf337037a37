import { extname } from 'node:path';
import type { ResponseKind } from './types.js';

/** Image types the reference supports, by extension (e-mail only: sent as inline attachments). */
const IMAGE_TYPES: Record<string, string> = {
  '.bmp': 'image/bmp',
  '.dib': 'image/bmp',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.png': 'image/png',
};

/** What a Src is by its extension: `.htm`/`.html` HTML, images, anything else plain text. */
export function kindOfPath(path: string): { kind: ResponseKind; contentType: string } {
  const ext = extname(path).toLowerCase();
  if (ext === '.htm' || ext === '.html') return { kind: 'html', contentType: 'text/html' };
  const image = IMAGE_TYPES[ext];
  if (image) return { kind: 'image', contentType: image };
  return { kind: 'text', contentType: 'text/plain' };
}
