import assert from 'node:assert/strict';
import { isOwnMessageId, ownMessageId } from '../../../src/shared/mail-headers.js';

const ID = '3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';

describe("Mailroom's own Message-IDs", () => {
  it("take the sending address's domain, as mail clients do", () => {
    assert.equal(ownMessageId(ID, 'support@Example.COM', null), `mailroom.${ID}@example.com`);
    assert.equal(ownMessageId(ID, 'support@helpdesk.example.org.', null), `mailroom.${ID}@helpdesk.example.org`);
    assert.equal(ownMessageId(ID, 'support@bücher.example', null), `mailroom.${ID}@xn--bcher-kva.example`);
  });

  it('take MAILROOM_MESSAGE_ID_DOMAIN when it is set', () => {
    assert.equal(ownMessageId(ID, 'support@example.com', 'mail.example.net'), `mailroom.${ID}@mail.example.net`);
  });

  it('fall back to the domain of old for an address without a usable domain', () => {
    for (const address of ['support@[192.0.2.1]', 'support', 'support@localhost']) {
      assert.equal(ownMessageId(ID, address, null), `mailroom.${ID}@mailroom.invalid`, address);
    }
  });

  it('are known by their form whatever their domain', () => {
    assert.ok(isOwnMessageId(`<mailroom.${ID}@example.com>`));
    assert.ok(isOwnMessageId(ownMessageId(ID, 'a@example.com', null)));
    assert.ok(!isOwnMessageId(`${ID}@example.com`));
    assert.ok(!isOwnMessageId(`mailroom.not-a-uuid@example.com`));
    assert.ok(!isOwnMessageId(null));
  });
});
