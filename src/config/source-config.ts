import { resolve } from 'node:path';
import { MailroomError } from '../shared/errors.js';

type Env = Record<string, string | undefined>;

/** Where raw message sources are kept (MAILROOM_BLOB_STORE and the backends' own variables). */
export interface SourceConfig {
  /**
   * MAILROOM_BLOB_STORE [s3 when MAILROOM_S3_BUCKET is set, else directory when MAILROOM_BLOB_DIR
   * is, else postgres]: the backend new sources are written to. The others configured stay
   * readable (sources written before a change, or during `mailroom blobs migrate`).
   */
  store: 'postgres' | 'directory' | 's3';
  /** MAILROOM_BLOB_DIR: a directory for sources (files 0600, folders 0700). */
  dir: string | undefined;
  /** MAILROOM_S3_*: an S3-compatible object store. */
  s3:
    | {
        /** MAILROOM_S3_ENDPOINT: e.g. `https://s3.example.net`; absent: AWS by region. */
        endpoint: string | undefined;
        /** MAILROOM_S3_BUCKET. */
        bucket: string;
        /** MAILROOM_S3_REGION [us-east-1]. */
        region: string;
        /** MAILROOM_S3_ACCESS_KEY_ID and MAILROOM_S3_SECRET_ACCESS_KEY (both or neither). */
        credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
        /** MAILROOM_S3_FORCE_PATH_STYLE [false]. */
        forcePathStyle: boolean;
      }
    | undefined;
}

function value(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

function invalid(name: string, text: string): MailroomError {
  return new MailroomError('CONFIG_INVALID', `${name} ${text}`, { field: name });
}

/** Reads the source store's variables; throws CONFIG_INVALID naming the one at fault. */
export function loadSourceConfig(env: Env, cwd: string): SourceConfig {
  const dirValue = value(env, 'MAILROOM_BLOB_DIR');
  const dir = dirValue === undefined ? undefined : resolve(cwd, dirValue);
  const bucket = value(env, 'MAILROOM_S3_BUCKET');
  let s3: SourceConfig['s3'];
  if (bucket !== undefined) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw invalid(
        'MAILROOM_S3_BUCKET',
        `must be a bucket name (3-63 lower-case letters, digits, dots, hyphens; got '${bucket}')`,
      );
    }
    const endpoint = value(env, 'MAILROOM_S3_ENDPOINT');
    if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
      throw invalid('MAILROOM_S3_ENDPOINT', `must be an http:// or https:// URL (got '${endpoint}')`);
    }
    const accessKeyId = value(env, 'MAILROOM_S3_ACCESS_KEY_ID');
    const secretAccessKey = value(env, 'MAILROOM_S3_SECRET_ACCESS_KEY');
    if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
      throw invalid(
        accessKeyId === undefined ? 'MAILROOM_S3_ACCESS_KEY_ID' : 'MAILROOM_S3_SECRET_ACCESS_KEY',
        'must be set together with its pair (MAILROOM_S3_ACCESS_KEY_ID, MAILROOM_S3_SECRET_ACCESS_KEY)',
      );
    }
    const pathStyle = (value(env, 'MAILROOM_S3_FORCE_PATH_STYLE') ?? 'false').toLowerCase();
    if (!['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'].includes(pathStyle)) {
      throw invalid('MAILROOM_S3_FORCE_PATH_STYLE', `must be true or false (got '${pathStyle}')`);
    }
    s3 = {
      endpoint,
      bucket,
      region: value(env, 'MAILROOM_S3_REGION') ?? 'us-east-1',
      credentials:
        accessKeyId !== undefined && secretAccessKey !== undefined ? { accessKeyId, secretAccessKey } : undefined,
      forcePathStyle: ['true', '1', 'yes', 'on'].includes(pathStyle),
    };
  }
  const chosen = value(env, 'MAILROOM_BLOB_STORE');
  const store = chosen ?? (s3 ? 's3' : dir ? 'directory' : 'postgres');
  if (store !== 'postgres' && store !== 'directory' && store !== 's3') {
    throw invalid('MAILROOM_BLOB_STORE', `must be postgres, directory or s3 (got '${store}')`);
  }
  if (store === 'directory' && dir === undefined)
    throw invalid('MAILROOM_BLOB_DIR', 'must be set when MAILROOM_BLOB_STORE is directory');
  if (store === 's3' && s3 === undefined)
    throw invalid('MAILROOM_S3_BUCKET', 'must be set when MAILROOM_BLOB_STORE is s3');
  return { store, dir, s3 };
}
