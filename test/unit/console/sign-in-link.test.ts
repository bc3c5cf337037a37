import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

type SignInLink = (verificationUri: string, authorityHost: string | null | undefined) => string | null;

describe('console: the device-code sign-in link', () => {
  let signInLink: SignInLink;

  before(async () => {
    // The console's own module, as the browser loads it.
    const url = pathToFileURL(join(process.cwd(), 'console', 'lib', 'sign-in-link.js')).href;
    ({ signInLink } = (await import(url)) as { signInLink: SignInLink });
  });

  it("links https pages on the authority's host and Microsoft's device-login pages", () => {
    const entra = 'https://login.microsoftonline.com';
    assert.equal(signInLink('https://microsoft.com/devicelogin', entra), 'https://microsoft.com/devicelogin');
    assert.equal(signInLink('https://www.microsoft.com/link', entra), 'https://www.microsoft.com/link');
    assert.equal(
      signInLink('https://idp.example:8443/device', 'https://idp.example:8443'),
      'https://idp.example:8443/device',
    );
    assert.equal(
      signInLink('https://microsoft.com/devicelogin', 'https://idp.example'),
      'https://microsoft.com/devicelogin',
    );
  });

  it('shows anything else as text only', () => {
    const authority = 'https://idp.example:8443';
    for (const uri of [
      'javascript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'http://idp.example:8443/device',
      'https://idp.example:9443/device',
      'https://evil.example/device',
      'https://microsoft.com.evil.example/devicelogin',
      'https://microsoft.com:8443/devicelogin',
      'https://user:pass@idp.example:8443/device',
      'not a url',
    ]) {
      assert.equal(signInLink(uri, authority), null, uri);
    }
    assert.equal(signInLink('https://idp.example/device', null), null, 'no authority known');
    assert.equal(signInLink('https://idp.example/device', 'http://idp.example'), null, 'an http authority');
  });
});
