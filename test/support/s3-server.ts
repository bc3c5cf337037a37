import { buildApp } from 'fauxqs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { S3Backend } from '../../src/store/sources/s3-backend.js';

/**
 * An S3-compatible server on a loopback port for the S3 source backend's tests: fauxqs (npm,
 * MIT), an SNS/SQS/S3 emulator written for the AWS SDK for JavaScript v3 and released through
 * 2026. It speaks the operations the backend uses (PutObject with aws-chunked uploads, GetObject,
 * HeadBucket/CreateBucket, ListObjectsV2 with StartAfter and continuation, DeleteObjects), in
 * path style. Chosen over s3rver (little maintained: last release 3.7.1, built on Koa 2 and
 * fast-xml-parser 3, written before the SDK sent checksum trailers by default), over moto (PyPI,
 * which this machine cannot reach) and MinIO (neither on npm nor in Debian). fauxqs's `startFauxqs` listens on every
 * interface, so its app is built here and bound to 127.0.0.1 alone.
 *
 * In front of it sits a TCP relay the test can cut (`down()`): new connections are reset and open
 * ones dropped, as when the object store goes away; `up()` restores it with the objects intact.
 */
export interface TestS3 {
  /** `http://127.0.0.1:<relay port>`, the endpoint to configure. */
  endpoint: string;
  bucket: string;
  /** A backend on the relay, with short timeouts and one attempt (tests of outages are quick). */
  backend(options?: { maxAttempts?: number }): S3Backend;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startTestS3(bucket = 'mailroom-test'): Promise<TestS3> {
  const app = buildApp({ logger: false });
  const target = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
  let isDown = false;
  const open = new Set<Socket>();
  const relay = createServer((client) => {
    if (isDown) return void client.resetAndDestroy();
    const upstream = connect(Number(target.port), '127.0.0.1');
    open.add(client);
    open.add(upstream);
    const drop = (): void => {
      open.delete(client);
      open.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
  const backends: S3Backend[] = [];
  const make = (options: { maxAttempts?: number } = {}): S3Backend => {
    const backend = new S3Backend({
      endpoint,
      bucket,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      forcePathStyle: true,
      requestTimeoutMs: 2_000,
      maxAttempts: options.maxAttempts ?? 1,
    });
    backends.push(backend);
    return backend;
  };
  await make().ensureBucket();
  return {
    endpoint,
    bucket,
    backend: make,
    down() {
      isDown = true;
      for (const socket of open) socket.destroy();
    },
    up() {
      isDown = false;
    },
    async close() {
      for (const b of backends) await b.close();
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
      await app.close();
    },
  };
}
