import { DirectoryBackend } from './directory-backend.js';
import { MessageSources } from './message-sources.js';
import { S3Backend, type S3Options } from './s3-backend.js';
import type { BlobBackend, SourceKind } from './source-backend.js';

/** The backends the operator configured, and the one new sources go to. */
export interface SourceBackendsOptions {
  store: SourceKind;
  dir: string | undefined;
  s3: Omit<S3Options, 'prefix' | 'requestTimeoutMs' | 'maxAttempts'> | undefined;
}

/** Builds the source store of the engine (see MessageSources); the caller closes it. */
export function openMessageSources(
  options: SourceBackendsOptions,
  query: <T>(sql: string, params?: unknown[]) => Promise<T[]>,
): MessageSources {
  const backends = new Map<Exclude<SourceKind, 'postgres'>, BlobBackend>();
  if (options.dir !== undefined) backends.set('directory', new DirectoryBackend(options.dir));
  if (options.s3 !== undefined) backends.set('s3', new S3Backend(options.s3));
  return new MessageSources(options.store, backends, query);
}
