import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { refOfName, sourceName, type BlobBackend, type ListedSource, type SourceRef } from './source-backend.js';

/** What MAILROOM_S3_* configure. */
export interface S3Options {
  /** MAILROOM_S3_ENDPOINT: `https://…` of an S3-compatible service; absent means AWS itself. */
  endpoint: string | undefined;
  /** MAILROOM_S3_BUCKET. */
  bucket: string;
  /** [us-east-1] MAILROOM_S3_REGION. */
  region: string;
  /** MAILROOM_S3_ACCESS_KEY_ID / MAILROOM_S3_SECRET_ACCESS_KEY; absent: the SDK's default chain. */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** [false] MAILROOM_S3_FORCE_PATH_STYLE: `endpoint/bucket/key` (most self-hosted services) instead of `bucket.endpoint/key`. */
  forcePathStyle: boolean;
  /** [`sources/`] where under the bucket the sources go. */
  prefix?: string;
  /** [10000] one request's time limit (connection and answer), ms. */
  requestTimeoutMs?: number;
  /** [3] attempts per request (the SDK's own retry with backoff) before the store reports an outage. */
  maxAttempts?: number;
}

/** At most this many keys per DeleteObjects request (S3's limit, API reference "DeleteObjects"). */
const DELETE_BATCH = 1000;

/**
 * Sources as objects `<prefix><tenantId>/<messageId>.eml` in a bucket, through the AWS SDK for
 * JavaScript v3 (@aws-sdk/client-s3, the only file that imports it). A PutObject answers 200 only
 * once the object is stored durably (S3 API reference, "PutObject"), which is what the message's
 * commit waits for. The SDK retries a failed request itself (`maxAttempts`); what fails after that
 * is an outage the caller reports (the ingest pass fails and is tried again; nothing is stored).
 */
export class S3Backend implements BlobBackend {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  private readonly prefix: string;

  constructor(private readonly options: S3Options) {
    this.prefix = options.prefix ?? 'sources/';
    this.client = new S3Client({
      ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      ...(options.credentials && { credentials: options.credentials }),
      maxAttempts: options.maxAttempts ?? 3,
      requestHandler: {
        connectionTimeout: options.requestTimeoutMs ?? 10_000,
        requestTimeout: options.requestTimeoutMs ?? 10_000,
      },
      // Checksums only where the API requires them (DeleteObjects): S3-compatible services that
      // predate the SDK's default CRC32 trailers (aws-chunked uploads) accept these requests too.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  private keyOf(ref: SourceRef): string {
    return `${this.prefix}${sourceName(ref)}.eml`;
  }

  /** Creates the bucket unless it exists (tests, and a first start against an empty service). */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      await this.client.send(new CreateBucketCommand({ Bucket: this.options.bucket }));
    }
  }

  async put(ref: SourceRef, data: Buffer): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: this.keyOf(ref),
        Body: data,
        ContentLength: data.length,
        ContentType: 'message/rfc822',
      }),
    );
  }

  async get(ref: SourceRef): Promise<Buffer | null> {
    try {
      const got = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(ref) }));
      if (!got.Body) return null;
      return Buffer.from(await got.Body.transformToByteArray());
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  async delete(refs: readonly SourceRef[]): Promise<void> {
    for (let start = 0; start < refs.length; start += DELETE_BATCH) {
      const chunk = refs.slice(start, start + DELETE_BATCH);
      const answer = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.options.bucket,
          Delete: { Objects: chunk.map((r) => ({ Key: this.keyOf(r) })), Quiet: true },
        }),
      );
      // A key that is not there is reported deleted (S3 API reference, "DeleteObjects"); an error
      // listed here is a real failure (access, internal): the deletion is tried again later.
      const failed = answer.Errors ?? [];
      if (failed.length > 0) {
        throw new Error(`the object store did not delete ${failed.length} sources (${failed[0]?.Code ?? 'unknown'})`);
      }
    }
  }

  async list(after: string | null, limit: number): Promise<{ items: ListedSource[]; next: string | null }> {
    const answer = await this.client.send(
      new ListObjectsV2Command({
        Bucket: this.options.bucket,
        Prefix: this.prefix,
        MaxKeys: Math.min(limit, 1000),
        ...(after !== null && { StartAfter: `${this.prefix}${after}.eml` }),
      }),
    );
    const items: ListedSource[] = [];
    let last: string | null = null;
    for (const object of answer.Contents ?? []) {
      if (!object.Key?.endsWith('.eml')) continue;
      const name = object.Key.slice(this.prefix.length, -'.eml'.length);
      last = name;
      const ref = refOfName(name);
      if (ref) items.push({ ...ref, modifiedAt: object.LastModified ?? new Date(0), bytes: object.Size ?? 0 });
    }
    return { items, next: answer.IsTruncated ? last : null };
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/** The HTTP status of an SDK error (404 for NoSuchKey / NotFound), if it has one. */
function statusOf(err: unknown): number | undefined {
  if (err instanceof S3ServiceException) return err.$metadata.httpStatusCode;
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}
