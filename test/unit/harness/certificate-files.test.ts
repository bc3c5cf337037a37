import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrMakeCertificates } from '../../../src/harness/fake-idp/certificate-files.js';

const DAY_MS = 86_400_000;

describe("fake identity provider: the harness's certificate files", function () {
  this.timeout(30_000);
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-idp-files-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes them once (key private), keeps them while valid, makes new ones near their end or when spoiled', async () => {
    const folder = join(dir, 'harness');
    const made = loadOrMakeCertificates(folder);
    assert.equal(made.made, true);
    assert.equal(made.caFile, join(folder, 'idp-ca.pem'));
    assert.equal(await readFile(made.caFile, 'utf8'), made.ca);
    assert.equal((await stat(folder)).mode & 0o777, 0o700);
    assert.equal((await stat(join(folder, 'idp-server.key'))).mode & 0o777, 0o600);
    const server = new X509Certificate(made.cert);
    assert.equal(server.verify(new X509Certificate(made.ca).publicKey), true);
    assert.match(server.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    const validDays = (Date.parse(server.validTo) - Date.now()) / DAY_MS;
    assert.ok(validDays > 29 && validDays <= 30, `valid ${validDays} days`);

    const kept = loadOrMakeCertificates(folder);
    assert.deepEqual([kept.made, kept.ca, kept.key], [false, made.ca, made.key]);

    const nearTheEnd = loadOrMakeCertificates(folder, () => Date.now() + 29.5 * DAY_MS);
    assert.equal(nearTheEnd.made, true);
    assert.notEqual(nearTheEnd.ca, made.ca);

    // A key that is not the certificate's: made anew rather than served broken.
    await writeFile(join(folder, 'idp-server.key'), made.key);
    const mended = loadOrMakeCertificates(folder);
    assert.equal(mended.made, true);
  });
});
