import assert from 'node:assert/strict';
import { classifyDeliveryError, certainlyNotDelivered } from '../../../src/outbound/delivery-error.js';
import { isMailroomError } from '../../../src/shared/errors.js';
import { NO_PROXY, proxyFor, proxyLabel } from '../../../src/shared/mail-proxies.js';

describe('mail proxies: the proxy a server chooses', () => {
  const main = new URL('http://main.example:3128');
  const lab = new URL('http://lab.example:8080');
  const proxies = { default: main, named: new Map([['lab', lab]]) };

  it('is the default for no choice, the named one by name, and none for `none`', () => {
    assert.equal(proxyFor(null, proxies), main);
    assert.equal(proxyFor('lab', proxies), lab);
    assert.equal(proxyFor(NO_PROXY, proxies), undefined);
    assert.equal(proxyFor(null, { named: new Map() }), undefined, 'no default: directly');
    assert.equal(proxyFor(null, undefined), undefined);
  });

  it('fails for a name the engine is not configured with, instead of connecting another way', () => {
    for (const configured of [proxies, undefined]) {
      assert.throws(
        () => proxyFor('elsewhere', configured),
        (err: unknown) => isMailroomError(err, 'PROXY_NOT_CONFIGURED') && /'elsewhere'/.test(err.message),
      );
    }
  });

  it('is shown without its user name and password', () => {
    assert.equal(proxyLabel(new URL('http://user:s3cret@proxy.example:3128')), 'http://proxy.example:3128');
  });

  it('makes an outbound queue pause (unreachable) with nothing sent, as a refused tunnel does', () => {
    let err: unknown;
    try {
      proxyFor('elsewhere', proxies);
    } catch (e) {
      err = e;
    }
    assert.equal(classifyDeliveryError(err).kind, 'unreachable');
    assert.match(classifyDeliveryError(err).reply, /not configured/);
    assert.equal(certainlyNotDelivered(err), true);
  });
});
