import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { isMailroomError, type MailroomError } from '../../../src/shared/errors.js';
import { bodyAjv, isHost, validate, withStorableText } from '../../../src/shared/validation.js';

function failure(fn: () => unknown): MailroomError {
  try {
    fn();
  } catch (err) {
    if (isMailroomError(err, 'VALIDATION_FAILED')) return err;
    throw err;
  }
  assert.fail('expected VALIDATION_FAILED');
}

describe('validation', () => {
  it('accepts host names and IP addresses, refuses the rest', () => {
    for (const ok of ['imap.example.com', 'localhost', '127.0.0.1', '::1', 'a-b.c', 'mail.example.com.']) {
      assert.ok(isHost(ok), ok);
    }
    for (const bad of ['', 'exa mple.com', '-a.com', 'a..b', 'http://x', 'x'.repeat(64) + '.com', 'a_b.com']) {
      assert.ok(!isHost(bad), bad);
    }
  });

  const schema = Type.Object(
    {
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      nested: Type.Object({ host: Type.String({ format: 'host' }) }),
    },
    { additionalProperties: false },
  );

  it('names the field at fault in dotted form', () => {
    assert.equal(failure(() => validate(schema, { port: 0, nested: { host: 'a' } })).field, 'port');
    assert.equal(failure(() => validate(schema, { port: 1, nested: { host: 'bad host' } })).field, 'nested.host');
    assert.equal(failure(() => validate(schema, { port: 1 })).field, 'nested');
    const unknown = failure(() => validate(schema, { port: 1, nested: { host: 'a' }, extra: true }));
    assert.equal(unknown.field, 'extra');
    assert.match(unknown.message, /'extra' is not a known field/);
  });

  it('reports every field at fault at once, each with its message, the first found as `field`', () => {
    const all = failure(() => validate(schema, { port: 0, nested: { host: 'bad host' }, extra: true }));
    assert.equal(all.field, 'extra');
    assert.deepEqual(all.details?.errors, [
      { field: 'extra', message: "'extra' is not a known field" },
      { field: 'port', message: "'port' must be >= 1" },
      { field: 'nested.host', message: "'nested.host' must be a valid host name or IP address" },
    ]);
    assert.equal(
      all.message,
      "'extra' is not a known field; 'port' must be >= 1; 'nested.host' must be a valid host name or IP address",
    );
    const Auth = Type.Object({
      auth: Type.Union([
        Type.Object({ method: Type.Literal('password'), password: Type.String() }),
        Type.Object({ method: Type.Literal('oauth2'), clientId: Type.String() }),
      ]),
      name: Type.String({ minLength: 1 }),
    });
    const union = failure(() => validate(Auth, { auth: { method: 'password' }, name: '' }));
    assert.deepEqual(
      (union.details?.errors as Array<{ field: string }>).map((e) => e.field),
      ['auth.password', 'name'],
      'one fault for the union (its first alternative’s), one for each other field',
    );
  });

  it('does not check again a body the route checked with the same schema, and checks any other', () => {
    const Send = Type.Object({ to: Type.Array(Type.String({ format: 'email' })) });
    const Other = Type.Object({ to: Type.Array(Type.String({ maxLength: 3 })) });
    const routeCheck = withStorableText(bodyAjv.compile(Send)); // as the API compiles its body schemas
    const body = { to: ['customer@example.net'] };
    assert.equal(routeCheck(body), true);
    assert.equal(failure(() => validate(Other, body)).field, 'to.0', 'another schema checks it');
    body.to[0] = 'changed after the check';
    assert.equal(validate(Send, body), body, 'the same schema takes the route’s word for it');
    assert.equal(failure(() => validate(Send, { to: ['not an address'] })).field, 'to.0', 'a body nobody checked');
  });

  it('lists the allowed values of a union of constants, and says what a pattern expects', () => {
    const Settings = Type.Object({
      tls: Type.Union([Type.Literal('implicit'), Type.Literal('none')]),
      mode: Type.Optional(Type.Union([Type.Literal('a'), Type.Literal('b'), Type.Null()])),
      caFile: Type.Optional(Type.Union([Type.String({ pattern: '^/' }), Type.Null()])),
      postProcess: Type.Optional(Type.String({ pattern: '^(seen|delete|move:[^\\r\\n]{1,200})$' })),
      code: Type.Optional(Type.String({ pattern: '^x+$' })),
    });
    const bad = failure(() =>
      validate(Settings, { tls: 'sometimes', mode: 'c', caFile: 'ca.pem', postProcess: 'archive', code: 'y' }),
    );
    assert.deepEqual(bad.details?.errors, [
      { field: 'tls', message: "'tls' must be one of: implicit, none" },
      { field: 'mode', message: "'mode' must be one of: a, b, null" },
      {
        field: 'caFile',
        message:
          "'caFile' must be an absolute path (starting with /) of a PEM file inside the MAILROOM_CA_DIR folder, or null",
      },
      {
        field: 'postProcess',
        message:
          "'postProcess' must be 'seen', 'delete' or 'move:<folder>' (a folder name of 1 to 200 characters, no line breaks)",
      },
      { field: 'code', message: "'code' must match the pattern ^x+$" },
    ]);
  });

  it('does not coerce types', () => {
    assert.equal(failure(() => validate(schema, { port: '993', nested: { host: 'a' } })).field, 'port');
  });
});
