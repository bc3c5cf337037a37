import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { isIP } from 'node:net';
import type { TSchema, Static } from '@sinclair/typebox';
import { MailroomError } from './errors.js';
import { isMailAddress } from './mail-address.js';
import { PROXY_NAME } from './mail-proxies.js';

// ajv-formats ships CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv, formats?: string[]) => Ajv;

const HOSTNAME_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `value` is a UUID (any version), as ids are. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** A DNS host name (letters, digits, hyphens, dots), an IPv4 or an IPv6 address. */
export function isHost(value: string): boolean {
  if (isIP(value) !== 0) return true;
  if (value.length === 0 || value.length > 253) return false;
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  return name.split('.').every((label) => HOSTNAME_LABEL.test(label));
}

/**
 * One ajv instance for every input: no type coercion, no silent removal of unknown fields.
 * `allErrors` is on so that a form with three mistakes is told of all three at once (see
 * `validationError`), not one per attempt.
 */
function buildAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    removeAdditional: false,
    coerceTypes,
    strict: false,
  });
  addFormats(ajv, ['email', 'uri', 'date-time', 'uuid']);
  ajv.addFormat('host', { type: 'string', validate: isHost });
  ajv.addFormat('user-name', { type: 'string', validate: isUserName });
  ajv.addFormat('display-name', { type: 'string', validate: isDisplayName });
  ajv.addFormat('mail-address', { type: 'string', validate: isMailAddress });
  return ajv;
}

/** Validates JSON bodies and service inputs. */
export const bodyAjv = buildAjv(false);
/** Validates path parameters and query strings, which arrive as text. */
export const paramsAjv = buildAjv(true);

/** Dotted field path of an ajv error, e.g. `/imap/port` → `imap.port`. */
export function fieldOf(error: ErrorObject, prefix?: string): string {
  const parts = error.instancePath.split('/').filter((p) => p !== '');
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required' && typeof params.missingProperty === 'string') {
    parts.push(params.missingProperty);
  }
  if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    parts.push(params.additionalProperty);
  }
  if (prefix) parts.unshift(prefix);
  return parts.join('.');
}

/** A sentence an administrator understands, naming the field. */
export function messageOf(error: ErrorObject, field: string): string {
  const params = error.params as Record<string, unknown>;
  const name = field === '' ? 'the request' : `'${field}'`;
  switch (error.keyword) {
    case 'required':
      return `${name} is required`;
    case 'additionalProperties':
      return `${name} is not a known field`;
    case 'enum':
      return `${name} must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
    case 'format':
      return `${name} must be ${FORMAT_NAMES[String(params.format)] ?? `a valid ${String(params.format)}`}`;
    case 'type':
      return `${name} must be of type ${String(params.type)}`;
    case 'minimum':
    case 'maximum':
      return `${name} must be ${error.keyword === 'minimum' ? '>=' : '<='} ${String(params.limit)}`;
    case 'minLength':
      return params.limit === 1
        ? `${name} must not be empty`
        : `${name} must have at least ${String(params.limit)} characters`;
    case 'maxLength':
      return `${name} must have at most ${String(params.limit)} characters`;
    case 'pattern':
      return `${name} ${PATTERN_NAMES[String(params.pattern)] ?? `must match the pattern ${String(params.pattern)}`}`;
    default:
      return `${name} ${error.message ?? 'is invalid'}`;
  }
}

/**
 * What a string failing a schema's `pattern` was expected to be, by the pattern (the schemas of
 * src/accounts, src/outbound and src/api name theirs here); others are quoted as they are.
 */
const PATTERN_NAMES: Record<string, string> = {
  '\\S': 'must not be blank',
  '^/': 'must be an absolute path (starting with /) of a PEM file inside the MAILROOM_CA_DIR folder, or null',
  '^https://': 'must be an https:// URL',
  '^https://[^/?#]+/?$': 'must be an https:// URL of the host alone (no path, query or fragment)',
  '^[Hh][Tt][Tt][Pp][Ss]?://': 'must be an http:// or https:// URL, or null',
  '^(seen|delete|move:[^\\r\\n]{1,200})$':
    "must be 'seen', 'delete' or 'move:<folder>' (a folder name of 1 to 200 characters, no line breaks)",
  '^[A-Za-z0-9.-]+$': 'must hold letters, digits, dots and hyphens only',
  '^[^\\r\\n]*$': 'must not contain line breaks',
  '^[\\w.+-]+/[\\w.+-]+$': 'must be a media type such as application/pdf',
  '^[A-Za-z0-9+/=\\s]*$': 'must be base64 (letters, digits, +, / and =)',
  '^[0-9]{1,15}$': 'must be a whole number of up to 15 digits',
  '^[0-9]{1,18}$': 'must be a whole number of up to 18 digits',
  [PROXY_NAME.source]: 'must be the name of a proxy of MAILROOM_PROXIES (letters, digits, ., _ and -), or null',
};

/** How a failed format is named in messages, when not by its own name. */
const FORMAT_NAMES: Record<string, string> = {
  uri: 'an absolute URL such as https://host/path',
  'date-time': 'an ISO 8601 date-time with a time zone, such as 2026-05-01T10:00:00Z',
  uuid: 'a UUID',
  host: 'a valid host name or IP address',
  'mail-address': 'a valid e-mail address (name@domain; Unicode allowed, e.g. info@bücher.example)',
  'user-name': 'a user name without control characters (line breaks, tabs) or spaces at either end',
  'display-name':
    'a name with a visible character and without control characters, bidirectional overrides or isolates ' +
    '(U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) or zero-width characters (U+200B-U+200D, U+2060, U+FEFF)',
};

/**
 * What a name shown to people may not hold: control characters (C0, DEL, C1, line and paragraph
 * separators), bidirectional overrides, embeddings, isolates and marks (a name that reads
 * differently from what it is, "Trojan Source"), and zero-width characters (two names that look
 * the same). An outside review named a tenant with them (issue 24). NUL is left to the check of
 * text that cannot be stored (`textFault`), which says so.
 */
const HIDDEN_IN_NAMES =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u200b-\u200d\u2060\ufeff]/;

/** A name of a tenant, server, destination or token: something visible, nothing hidden (see HIDDEN_IN_NAMES). */
export function isDisplayName(value: string): boolean {
  return /\S/.test(value) && !HIDDEN_IN_NAMES.test(value);
}

/**
 * A mail account's user name: no control characters (a line break would end an IMAP or SMTP
 * command) and no blanks at either end (pasted by mistake, never part of a login).
 */
export function isUserName(value: string): boolean {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return !/[\u0000-\u001f\u007f]/.test(value) && value.trim() === value;
}

/**
 * One fault per field, in the order found. Under a union (`anyOf`/`oneOf`: an auth method that is
 * a password or OAuth) every alternative reports what it missed; the first alternative's first
 * fault stands for the union, as it did when only the first fault was reported.
 */
function faultsOf(errors: ErrorObject[]): ErrorObject[] {
  const unions = new Set(
    errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.instancePath),
  );
  const seenUnions = new Set<string>();
  const kept: ErrorObject[] = [];
  for (const error of errors) {
    const union = unions.size === 0 ? undefined : unionOf(error.instancePath, unions);
    if (union !== undefined) {
      if (seenUnions.has(union)) continue;
      seenUnions.add(union);
      kept.push(
        choiceOf(
          errors.filter((e) => within(e.instancePath, union)),
          union,
        ) ?? error,
      );
      continue;
    }
    kept.push(error);
  }
  return kept;
}

/** Whether `path` is `union`'s path or lies within it. */
function within(path: string, union: string): boolean {
  return path === union || path.startsWith(`${union}/`);
}

/** The outermost union (anyOf/oneOf) path that `path` is, or lies within; set lookups, one per level. */
function unionOf(path: string, unions: ReadonlySet<string>): string | undefined {
  if (unions.has('')) return '';
  for (let end = path.indexOf('/', 1); end !== -1; end = path.indexOf('/', end + 1)) {
    const prefix = path.slice(0, end);
    if (unions.has(prefix)) return prefix;
  }
  return unions.has(path) ? path : undefined;
}

/** [20] fields at fault named in one answer; a body with more is told how many more there are. */
const MAX_FAULTS_SHOWN = 20;

/**
 * A union of constants (`Type.Union([Type.Literal('a'), …])`, maybe with null) that the value
 * matched none of, as one `enum` fault listing the allowed values ("must be one of: a, b"),
 * instead of ajv's "must be equal to constant" of the first; undefined for other unions.
 */
function choiceOf(inUnion: ErrorObject[], union: string): ErrorObject | undefined {
  const allowed: unknown[] = [];
  for (const e of inUnion) {
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
    const params = e.params as Record<string, unknown>;
    if (e.instancePath !== union) return undefined;
    if (e.keyword === 'const') allowed.push(params.allowedValue);
    else if (e.keyword === 'type' && params.type === 'null') allowed.push(null);
    else return undefined;
  }
  if (allowed.length === 0) return undefined;
  const [first] = inUnion as [ErrorObject];
  return { ...first, keyword: 'enum', params: { allowedValues: allowed } };
}

/**
 * VALIDATION_FAILED for every field at fault: `field` and the message start with the first, the
 * message names them all (the first MAX_FAULTS_SHOWN, and how many more), and `details.errors`
 * lists each with its own message. Linear in the errors: a body of 50,000 unknown fields is
 * answered in milliseconds, not seconds.
 */
export function validationError(errors: ErrorObject[] | null | undefined, prefix?: string): MailroomError {
  if (!errors || errors.length === 0) return new MailroomError('VALIDATION_FAILED', 'the request is invalid');
  const faults: Array<{ field: string; message: string }> = [];
  const seen = new Set<string>();
  let more = 0;
  for (const error of faultsOf(errors)) {
    const field = fieldOf(error, prefix);
    if (seen.has(field)) continue;
    seen.add(field);
    if (faults.length >= MAX_FAULTS_SHOWN) {
      more += 1;
      continue;
    }
    faults.push({ field, message: messageOf(error, field) });
  }
  const [first] = faults as [{ field: string; message: string }];
  if (faults.length === 1) return new MailroomError('VALIDATION_FAILED', first.message, { field: first.field });
  const message = faults.map((f) => f.message).join('; ') + (more > 0 ? `; and ${more} more fields at fault` : '');
  return new MailroomError('VALIDATION_FAILED', message, {
    field: first.field,
    details: { errors: faults, ...(more > 0 && { more }) },
  });
}

/**
 * Why a text cannot be stored, or undefined: PostgreSQL refuses NUL (U+0000) in `text` and
 * `jsonb`, and a lone UTF-16 surrogate is no Unicode text at all (`jsonb` refuses it, `text` would
 * silently hold U+FFFD instead). Both arrive easily as JSON escapes (`\u0000`, `\ud800`).
 */
function textFault(text: string): string | undefined {
  if (text.includes('\u0000')) return 'must not contain a NUL character (U+0000)';
  // String.prototype.isWellFormed (ES2024, in Node 20): false for a lone surrogate.
  if (!(text as string & { isWellFormed(): boolean }).isWellFormed()) {
    return 'must not contain a lone UTF-16 surrogate (not Unicode text)';
  }
  return undefined;
}

/** The first string (value or field name) of a JSON value that cannot be stored, as an ajv error naming where. */
export function unstorableText(value: unknown): ErrorObject | undefined {
  const found = textFaultIn(value);
  if (!found) return undefined;
  return {
    keyword: 'text',
    instancePath: found.at.map((key) => `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`).join(''),
    schemaPath: '#',
    params: {},
    message: found.why,
  };
}

/**
 * Where (the keys from the top) and why a value holds text that cannot be stored. Every request
 * body passes here: nothing is allocated unless something is wrong (the path is made on the way
 * back), and no closure is made per call.
 */
function textFaultIn(value: unknown): { at: string[]; why: string } | undefined {
  if (typeof value === 'string') {
    const why = textFault(value);
    return why === undefined ? undefined : { at: [], why };
  }
  if (typeof value !== 'object' || value === null) return undefined;
  for (const key of Object.keys(value)) {
    const keyWhy = textFault(key);
    if (keyWhy !== undefined) return { at: [], why: `has a field name that ${keyWhy}` };
    const found = textFaultIn((value as Record<string, unknown>)[key]);
    if (found) {
      found.at.unshift(key);
      return found;
    }
  }
  return undefined;
}

/**
 * An ajv validator that also refuses text that cannot be stored (see `unstorableText`), once the
 * schema passed: every input field at once, whatever its schema says. For the API's compiler.
 */
export function withStorableText(check: ValidateFunction): ValidateFunction {
  const checked = ((data: unknown, context?: Parameters<ValidateFunction>[1]) => {
    if (!check(data, context)) {
      checked.errors = check.errors ?? null;
      return false;
    }
    const fault = unstorableText(data);
    checked.errors = fault ? [fault] : null;
    if (fault === undefined && typeof data === 'object' && data !== null) passed.set(data, check);
    return fault === undefined;
  }) as ValidateFunction;
  // fastify hands ajv's parent data (needed to coerce a root value) to validators with a schemaEnv.
  checked.schemaEnv = check.schemaEnv;
  checked.schema = check.schema;
  return checked;
}

/**
 * The objects that passed a check, and the check (ajv's compiled schema): a body the API's route
 * checked is not checked again by the service it is handed to (`validate` with the same schema;
 * ajv compiles a schema object once). A few microseconds a request.
 */
const passed = new WeakMap<object, ValidateFunction>();

const compiled = new WeakMap<TSchema, { check: ValidateFunction; schemaCheck: ValidateFunction }>();

/**
 * Checks `input` against `schema`, and that its text can be stored, and returns it typed.
 * Throws VALIDATION_FAILED naming the first field at fault.
 */
export function validate<S extends TSchema>(schema: S, input: unknown): Static<S> {
  let entry = compiled.get(schema);
  if (!entry) {
    const schemaCheck = bodyAjv.compile(schema);
    entry = { check: withStorableText(schemaCheck), schemaCheck };
    compiled.set(schema, entry);
  }
  if (typeof input === 'object' && input !== null && passed.get(input) === entry.schemaCheck) return input as Static<S>;
  if (!entry.check(input)) throw validationError(entry.check.errors);
  return input as Static<S>;
}
