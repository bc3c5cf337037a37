import { createPrivateKey, type KeyObject } from 'node:crypto';

/**
 * A Google service account's key, as the JSON key file Google Cloud gives for download
 * ("Keys → Add key → JSON": `type`, `client_email`, `private_key`, `private_key_id`, `token_uri`,
 * …), or its PEM private key alone. Only the key is taken from it: the token endpoint is the
 * server's `authorityHost`, never the file's `token_uri` (a file pasted by a tenant must not
 * choose where the engine sends a signed assertion).
 */
export interface ServiceAccountKey {
  privateKey: KeyObject;
  /** `private_key_id`, sent as the JWT's `kid` when present. */
  keyId: string | undefined;
  /** `client_email` of a JSON key file. */
  clientEmail: string | undefined;
}

/** Parses a key; throws an Error whose message says what is wrong (never repeating the key). */
export function parseServiceAccountKey(text: string): ServiceAccountKey {
  const trimmed = text.trim();
  let pem = trimmed;
  let keyId: string | undefined;
  let clientEmail: string | undefined;
  if (trimmed.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch {
      throw new Error('is neither a service account JSON key file nor a PEM private key (the JSON does not parse)');
    }
    const file = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
    if (typeof file.private_key !== 'string') throw new Error('is a JSON file without a private_key');
    pem = file.private_key;
    keyId = typeof file.private_key_id === 'string' ? file.private_key_id : undefined;
    clientEmail = typeof file.client_email === 'string' ? file.client_email : undefined;
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error('holds no readable PEM private key');
  }
  if (privateKey.asymmetricKeyType !== 'rsa')
    throw new Error('must be an RSA key (Google signs service accounts with RS256)');
  return { privateKey, keyId, clientEmail };
}
