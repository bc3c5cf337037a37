import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/config.js';
import { resolveSecrets } from '../../../src/config/local-secrets.js';
import { makeTestCertificates } from '../../../src/harness/fake-idp/index.js';
import { isMailroomError } from '../../../src/shared/errors.js';

describe('config', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({}, '/srv/mailroom');
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.dataDir, '/srv/mailroom/data');
    assert.equal(config.spoolDir, '/srv/mailroom/spool');
    assert.equal(config.httpHost, '127.0.0.1');
    assert.equal(config.httpPort, 8025);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.leaseTtlMs, 20_000);
    assert.equal(config.messageIdDomain, null, "no override: each Message-ID takes its sending address's domain");
    assert.equal(
      loadConfig({ MAILROOM_MESSAGE_ID_DOMAIN: 'mail.example.org' }, '/').messageIdDomain,
      'mail.example.org',
    );
    assert.equal(config.rateLimitPerToken, 6_000, 'requests per minute per token');
    assert.equal(config.rateLimitPerAddress, 300, 'requests without a valid token per minute per address');
    assert.equal(loadConfig({ MAILROOM_RATE_LIMIT_PER_TOKEN: '0' }, '/x').rateLimitPerToken, 0, '0: no limit');
    assert.equal(config.imap.connectLimits, undefined, 'the inbound defaults apply');
    assert.equal(config.imap.fetchMemoryBytes, undefined, 'the inbound defaults apply');
    assert.equal(config.httpsProxy, undefined, 'no proxy');
    assert.equal(config.mailProxies.default, undefined, 'no proxy');
    assert.equal(config.mailAddresses.refuses('127.0.0.1'), 'loopback', "a tenant's mail hosts: public only");
    assert.equal(
      loadConfig({ MAILROOM_MAIL_ALLOW_PRIVATE: '10.20.0.0/16' }, '/').mailAddresses.refuses('10.20.1.1'),
      undefined,
    );
    assert.equal(config.mailProxies.named.size, 0, 'no named proxies');
    const proxies = loadConfig(
      {
        MAILROOM_MAIL_PROXY: 'http://main.example:3128',
        MAILROOM_PROXIES: 'office=http://p1.example:3128, lab-2=http://u:pw@p2.example:8080',
      },
      '/x',
    ).mailProxies;
    assert.equal(proxies.default?.host, 'main.example:3128');
    assert.deepEqual(
      [...proxies.named].map(([name, url]) => [name, url.host, url.username]),
      [
        ['office', 'p1.example:3128', ''],
        ['lab-2', 'p2.example:8080', 'u'],
      ],
    );
    assert.equal(loadConfig({ MAILROOM_HTTPS_PROXY: 'http://u:p@proxy.example:3128' }, '/x').httpsProxy?.port, '3128');
    const web = loadConfig(
      { MAILROOM_HTTPS_PROXY: 'http://proxy.example:3128', MAILROOM_NO_PROXY: 'hooks.internal, 10.0.0.0/8' },
      '/x',
    );
    assert.equal(web.noProxy.matches('crm.hooks.internal'), true);
    assert.equal(web.noProxy.matches('10.1.2.3'), true);
    assert.equal(web.noProxy.matches('login.microsoftonline.com'), false);
    const byDefault = loadConfig({}, '/x').noProxy;
    assert.ok(
      ['localhost', '127.0.0.1', '127.9.9.9', '[::1]'].every((h) => byDefault.matches(h)),
      'this machine',
    );
    assert.equal(byDefault.matches('hooks.example.com'), false);
    assert.equal(web.noProxy.matches('127.0.0.1'), false, 'a list given replaces the default');
  });

  it('reads the scaling settings', () => {
    const config = loadConfig({ MAILROOM_LEASE_TTL_MS: '6000', MAILROOM_IMAP_CONNECTS_PER_HOST: '2' }, '/srv/mailroom');
    assert.equal(config.leaseTtlMs, 6_000);
    assert.deepEqual(config.imap.connectLimits, { concurrency: 32, perHost: 2 });
    assert.equal(loadConfig({ MAILROOM_IMAP_FETCH_MEMORY_MB: '64' }, '/x').imap.fetchMemoryBytes, 64 * 1024 * 1024);
  });

  it('never shows a proxy password in a configuration error', () => {
    for (const env of [
      { MAILROOM_MAIL_PROXY: 'http://user:s3cret@proxy.example:3128/path' },
      { MAILROOM_PROXIES: 'lab=http://user:s3cret@proxy.example:3128/path' },
    ]) {
      assert.throws(
        () => loadConfig(env, '/x'),
        (err: unknown) =>
          isMailroomError(err, 'CONFIG_INVALID') &&
          !err.message.includes('s3cret') &&
          /proxy\.example/.test(err.message),
      );
    }
  });

  it('names the variable at fault', () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ MAILROOM_HTTP_PORT: '70000' }, 'MAILROOM_HTTP_PORT'],
      [{ MAILROOM_HTTP_PORT: 'abc' }, 'MAILROOM_HTTP_PORT'],
      [{ MAILROOM_DATABASE_URL: 'mysql://x' }, 'MAILROOM_DATABASE_URL'],
      [{ MAILROOM_LOG_LEVEL: 'loud' }, 'MAILROOM_LOG_LEVEL'],
      [{ MAILROOM_HTTP_HOST: 'not a host' }, 'MAILROOM_HTTP_HOST'],
      [{ MAILROOM_LEASE_TTL_MS: '10' }, 'MAILROOM_LEASE_TTL_MS'],
      [{ MAILROOM_IMAP_CONNECT_CONCURRENCY: '0' }, 'MAILROOM_IMAP_CONNECT_CONCURRENCY'],
      [{ MAILROOM_IMAP_FETCH_MEMORY_MB: '0' }, 'MAILROOM_IMAP_FETCH_MEMORY_MB'],
      [{ MAILROOM_IMAP_FETCH_MEMORY_MB: 'lots' }, 'MAILROOM_IMAP_FETCH_MEMORY_MB'],
      [{ MAILROOM_HTTPS_PROXY: 'proxy.example:3128' }, 'MAILROOM_HTTPS_PROXY'],
      [{ MAILROOM_HTTPS_PROXY: 'socks5://proxy.example:1080' }, 'MAILROOM_HTTPS_PROXY'],
      [{ MAILROOM_MAIL_PROXY: 'http://proxy.example:3128/path' }, 'MAILROOM_MAIL_PROXY'],
      [{ MAILROOM_PROXIES: 'http://proxy.example:3128' }, 'MAILROOM_PROXIES'],
      [{ MAILROOM_PROXIES: 'none=http://proxy.example:3128' }, 'MAILROOM_PROXIES'],
      [{ MAILROOM_PROXIES: 'a=http://p1.example:1,a=http://p2.example:2' }, 'MAILROOM_PROXIES'],
      [{ MAILROOM_PROXIES: 'two words=http://p1.example:1' }, 'MAILROOM_PROXIES'],
      [{ MAILROOM_PROXIES: 'a=socks5://p1.example:1080' }, 'MAILROOM_PROXIES'],
      [{ MAILROOM_NO_PROXY: 'intranet.example:8080' }, 'MAILROOM_NO_PROXY'],
      [{ MAILROOM_WEBHOOK_ALLOW_PRIVATE: 'maybe' }, 'MAILROOM_WEBHOOK_ALLOW_PRIVATE'],
      [{ MAILROOM_WEBHOOK_ALLOW_PRIVATE: '10.0.0.0/33' }, 'MAILROOM_WEBHOOK_ALLOW_PRIVATE'],
      [{ MAILROOM_REMOTE_SRC_ALLOW_PRIVATE: 'intranet.example' }, 'MAILROOM_REMOTE_SRC_ALLOW_PRIVATE'],
      [{ MAILROOM_MAIL_ALLOW_PRIVATE: 'mail.corp.example' }, 'MAILROOM_MAIL_ALLOW_PRIVATE'],
      [{ MAILROOM_REMOTE_SRC_ALLOW_HTTP: 'sometimes' }, 'MAILROOM_REMOTE_SRC_ALLOW_HTTP'],
      [{ MAILROOM_MESSAGE_ID_DOMAIN: 'a b@c' }, 'MAILROOM_MESSAGE_ID_DOMAIN'],
      [{ MAILROOM_MESSAGE_ID_DOMAIN: 'example' }, 'MAILROOM_MESSAGE_ID_DOMAIN'],
      [{ MAILROOM_MESSAGE_ID_DOMAIN: '192.0.2.1' }, 'MAILROOM_MESSAGE_ID_DOMAIN'],
      [{ MAILROOM_MESSAGE_ID_DOMAIN: 'mail.-example.org' }, 'MAILROOM_MESSAGE_ID_DOMAIN'],
    ];
    for (const [env, field] of cases) {
      assert.throws(
        () => loadConfig(env, '/x'),
        (err: unknown) => isMailroomError(err, 'CONFIG_INVALID') && err.field === field,
        field,
      );
    }
  });

  it('accepts CA files from MAILROOM_CA_DIR only when it is set', () => {
    assert.equal(loadConfig({}, '/srv').caDir, undefined);
    assert.equal(loadConfig({ MAILROOM_CA_DIR: 'ca' }, '/srv').caDir, '/srv/ca');
  });

  it('reads the CA certificates of MAILROOM_OAUTH_CA_FILE at start, refusing a file without one', async () => {
    assert.equal(loadConfig({}, '/srv').oauthCa, undefined);
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-oauth-ca-'));
    try {
      const { ca, key } = makeTestCertificates();
      await writeFile(join(dir, 'ca.pem'), `# the harness's CA\n${ca}`);
      await writeFile(join(dir, 'key.pem'), key);
      assert.equal(loadConfig({ MAILROOM_OAUTH_CA_FILE: 'ca.pem' }, dir).oauthCa, ca.trim());
      for (const file of ['key.pem', 'missing.pem', '.']) {
        assert.throws(
          () => loadConfig({ MAILROOM_OAUTH_CA_FILE: file }, dir),
          (err: unknown) =>
            isMailroomError(err, 'CONFIG_INVALID') &&
            err.field === 'MAILROOM_OAUTH_CA_FILE' &&
            err.message.includes(join(dir, file)),
          file,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes whole numbers in plain decimal digits only, blank as unset', () => {
    for (const raw of ['0x1F90', '2e4', '8080.0', '+8080', '-1', '8_080', '80 80']) {
      assert.throws(
        () => loadConfig({ MAILROOM_HTTP_PORT: raw }, '/x'),
        (err: unknown) =>
          isMailroomError(err, 'CONFIG_INVALID') && err.field === 'MAILROOM_HTTP_PORT' && err.message.includes(raw),
        raw,
      );
    }
    assert.throws(
      () => loadConfig({ MAILROOM_LEASE_TTL_MS: '2e4' }, '/x'),
      (err: unknown) => isMailroomError(err, 'CONFIG_INVALID') && err.field === 'MAILROOM_LEASE_TTL_MS',
    );
    const padded = loadConfig({ MAILROOM_HTTP_PORT: ' 8080 ', MAILROOM_SHUTDOWN_TIMEOUT_MS: '\t2500\n' }, '/x');
    assert.deepEqual([padded.httpPort, padded.shutdownTimeoutMs], [8080, 2500]);
    // Blank is unset (as for every variable), never 0: port 0 would mean "any free port".
    const blank = loadConfig(
      { MAILROOM_HTTP_PORT: ' ', MAILROOM_SHUTDOWN_TIMEOUT_MS: '  ', MAILROOM_IMAP_CONNECTS_PER_HOST: ' ' },
      '/x',
    );
    assert.deepEqual([blank.httpPort, blank.shutdownTimeoutMs, blank.imap.connectLimits], [8025, 10_000, undefined]);
  });

  describe('secrets', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'mailroom-config-'));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('generates a key and a token for the embedded database, mode 0600, once', async () => {
      const config = loadConfig({}, dir);
      const first = await resolveSecrets(config);
      assert.equal(first.secretKey.length, 32);
      assert.ok(first.generated.secretKeyFile && first.generated.apiTokenFile);
      assert.equal((await stat(join(dir, 'data', 'secret.key'))).mode & 0o777, 0o600);
      assert.equal((await stat(join(dir, 'data', 'api-token'))).mode & 0o777, 0o600);
      const second = await resolveSecrets(config);
      assert.deepEqual(second.generated, {});
      assert.ok(second.secretKey.equals(first.secretKey));
      assert.equal(second.apiToken, (await readFile(join(dir, 'data', 'api-token'), 'utf8')).trim());
    });

    it('refuses to start on PostgreSQL without a key, saying how to make one', async () => {
      const config = loadConfig({ MAILROOM_DATABASE_URL: 'postgres://x/y', MAILROOM_API_TOKEN: 't' }, dir);
      await assert.rejects(
        resolveSecrets(config),
        (err: unknown) => isMailroomError(err, 'SECRET_KEY_MISSING') && /openssl rand -base64 32/.test(err.message),
      );
    });

    it('refuses a key of the wrong size', async () => {
      const config = loadConfig({ MAILROOM_SECRET_KEY: 'c2hvcnQ=' }, dir);
      await assert.rejects(resolveSecrets(config), /MAILROOM_SECRET_KEY must be 32 random bytes/);
    });
  });
});
