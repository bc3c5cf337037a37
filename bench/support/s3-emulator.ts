/**
 * The S3-compatible server of the blob-store benchmark, in a process of its own (so that its CPU
 * is not counted in the engine's): fauxqs, as in the tests (test/support/s3-server.ts says why
 * that emulator), bound to 127.0.0.1 on a free port. Prints its URL on the first line of stdout
 * and serves until it is killed.
 */
import { buildApp } from 'fauxqs';

const app = buildApp({ logger: false });
const url = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${url}\n`);
